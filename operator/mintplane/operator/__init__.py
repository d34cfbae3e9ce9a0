"""The mintplane Kopf operator: reconciles Chain, ChainEndpoint, IndexerJob and Collection resources into
the chain-registry (and catalog) services and into indexer workloads.

Layout: ``settings`` (environment), ``startup`` (Kopf settings and the shared clients in ``memo``),
``handlers/<kind>`` (thin Kopf handlers), and plain modules holding the logic those handlers call
(``builders``, ``probe``, ``conditions``, ``specs``, ``registry``, ``catalog``, ``kube``).
"""
