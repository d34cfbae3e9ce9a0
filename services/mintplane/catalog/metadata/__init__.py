"""Token metadata ingestion: tokenURI reads, the SSRF-safe fetcher, document parsing, the worker, refresh.

Tokens arrive from transfer ingestion with ``metadata_status = 'pending'``. The worker (:mod:`.worker`)
claims due tokens in batches, reads their URIs with batched ``eth_call`` (:mod:`.chain`), turns each URI
into a fetch target (:mod:`.uris`), fetches and parses documents (:mod:`.fetch`, :mod:`.document`) and
writes a batch's outcomes in one transaction (:mod:`.store`). :mod:`.refresh` is the RefreshMetadata RPC.
"""
