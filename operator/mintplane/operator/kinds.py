"""The API coordinates of the resources the operator watches."""

GROUP = "mintplane.io"
VERSION = "v1alpha1"
CHAINS = "chains"
ENDPOINTS = "chainendpoints"
INDEXER_JOBS = "indexerjobs"
COLLECTIONS = "collections"
