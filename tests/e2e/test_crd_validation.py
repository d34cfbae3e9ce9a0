"""The mintplane CRDs as a platform engineer meets them: installed from `crds/`, every example accepted, bad
specs refused by the API server with a message that says what is wrong, `kubectl get` / `explain` useful.

Runs against whatever cluster KUBECONFIG names (the dev stack's by default). Each test works in its own
namespace, deleted at the end. Chains created for real use a random chain id, so an operator watching the
cluster never confuses them with a real network.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from mintplane.devstack.layout import Layout

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
EXAMPLES_DIR = ROOT / "examples"
GROUP = "mintplane.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURALS = {
    "Chain": "chains", "ChainEndpoint": "chainendpoints", "IndexerJob": "indexerjobs", "Collection": "collections",
}
# `kubectl apply --server-side` (what `mintplane dev up` runs) applies as field manager "kubectl". Applying as
# the same manager keeps one owner of the CRD fields, so a field removed from crds/ is removed from the cluster.
FIELD_MANAGER = "kubectl"
MERGE_PATCH = "application/merge-patch+json"
REMOVE = object()
Doc = dict[str, Any]


class Objects:
    """Typed access to mintplane custom objects in one namespace (the generated client returns `object`)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace

    def create(self, doc: Doc, **kwargs: Any) -> Doc:
        return cast(Doc, self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[doc["kind"]], doc, **kwargs))

    def get(self, doc: Doc) -> Doc:
        return cast(Doc, self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[doc["kind"]], doc["metadata"]["name"]))

    def merge_patch(self, doc: Doc, patch: Doc) -> Doc:
        return cast(Doc, self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[doc["kind"]], doc["metadata"]["name"], patch,
            _content_type=MERGE_PATCH))

    def patch_status(self, doc: Doc, patch: Doc, **kwargs: Any) -> Doc:
        """Writes through the status subresource, as the operator does."""
        return cast(Doc, self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, PLURALS[doc["kind"]], doc["metadata"]["name"], patch,
            _content_type=MERGE_PATCH, **kwargs))

    def names(self, kind: str, field_selector: str) -> list[str]:
        listed = cast(Doc, self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[kind], field_selector=field_selector))
        return sorted(item["metadata"]["name"] for item in listed["items"])


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def kube(kubeconfig: Path) -> client.ApiClient:
    return cast(client.ApiClient, config.new_client_from_config(config_file=str(kubeconfig)))  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def kubectl(layout: Layout, kubeconfig: Path) -> Callable[..., str]:
    """Runs the pinned kubectl (the dev stack's, else the one on PATH) against the same cluster."""
    pinned = layout.bin / "kubectl"
    binary = str(pinned) if pinned.exists() else shutil.which("kubectl")
    assert binary, "no kubectl binary: run `make up` or put kubectl on PATH"

    def run(*args: str) -> str:
        result = subprocess.run(
            [binary, f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    return run


def _as_dict(api: client.ApiClient, model: object) -> Doc:
    return cast(Doc, api.sanitize_for_serialization(model))  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def crds(kube: client.ApiClient) -> dict[str, Doc]:
    """Server-side applies every CRD in crds/ (idempotent) and waits until each is Established."""
    ext = client.ApiextensionsV1Api(kube)
    files = sorted(CRD_DIR.glob("*.yaml"))
    assert files, f"no CRDs in {CRD_DIR}"
    pending = set()
    for path in files:
        body = yaml.safe_load(path.read_text())
        ext.patch_custom_resource_definition(
            body["metadata"]["name"], body, field_manager=FIELD_MANAGER, force=True,
            _content_type="application/apply-patch+yaml",
        )
        pending.add(body["metadata"]["name"])
    installed: dict[str, Doc] = {}
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            crd = _as_dict(kube, ext.read_custom_resource_definition(name))
            conditions = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
            if conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True":
                installed[name] = crd
                pending.discard(name)
        if pending:
            time.sleep(0.2)
    assert not pending, f"CRDs not Established within 30s: {sorted(pending)}"
    return installed


@pytest.fixture
def namespace(kube: client.ApiClient, crds: dict[str, Doc]) -> Iterator[str]:
    core = client.CoreV1Api(kube)
    name = f"crd-test-{uuid.uuid4().hex[:10]}"
    labels = {"mintplane.io/test": "crd"}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def objects(kube: client.ApiClient, namespace: str) -> Objects:
    return Objects(kube, namespace)


# ---------------------------------------------------------------------------------------------- helpers


def _chain_id() -> int:
    """A chain id in a range public networks leave unused, random so parallel runs do not meet."""
    return random.randrange(2_000_000_000, 2_147_483_647)


def chain_doc() -> Doc:
    chain_id = _chain_id()
    return {
        "apiVersion": API_VERSION, "kind": "Chain",
        "metadata": {"name": f"chain-{uuid.uuid4().hex[:8]}"},
        "spec": {
            "caip2": f"eip155:{chain_id}", "chainId": chain_id, "name": "Test Chain", "nativeSymbol": "ETH",
            "enabled": False, "explorerUrl": "https://explorer.example.com",
            "gasPolicy": {"maxFeeGwei": "100", "priorityFeeGwei": "2"},
            "indexer": {"enabled": False, "confirmations": 12},
        },
    }


def endpoint_doc() -> Doc:
    return {
        "apiVersion": API_VERSION, "kind": "ChainEndpoint",
        "metadata": {"name": f"ep-{uuid.uuid4().hex[:8]}"},
        "spec": {"chainRef": "test-chain", "url": "https://rpc.example.com/eth", "priority": 10},
    }


def job_doc() -> Doc:
    return {
        "apiVersion": API_VERSION, "kind": "IndexerJob",
        "metadata": {"name": f"ij-{uuid.uuid4().hex[:8]}"},
        "spec": {"chainRef": "test-chain", "fromBlock": 100, "toBlock": 200,
                 "contracts": ["0x5FbDB2315678afecb367f032d93F642f64180aa3"]},
    }


def collection_doc() -> Doc:
    return {
        "apiVersion": API_VERSION, "kind": "Collection",
        "metadata": {"name": f"col-{uuid.uuid4().hex[:8]}"},
        "spec": {"chainRef": "test-chain", "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                 "standard": "ERC721", "startBlock": 0, "slug": "test-collection", "name": "Test Collection"},
    }


BUILDERS: dict[str, Callable[[], Doc]] = {
    "Chain": chain_doc, "ChainEndpoint": endpoint_doc, "IndexerJob": job_doc, "Collection": collection_doc,
}


def edited(doc: Doc, edits: dict[str, Any]) -> Doc:
    """Returns a copy of doc with dotted paths set (or removed with REMOVE)."""
    doc = copy.deepcopy(doc)
    for dotted, value in edits.items():
        *parents, leaf = dotted.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        if value is REMOVE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return doc


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    """Runs a request the API server must refuse; returns (HTTP status, message)."""
    with pytest.raises(ApiException) as excinfo:
        call()
    body = json.loads(excinfo.value.body or "{}")
    return int(excinfo.value.status or 0), str(body.get("message", ""))


def example_docs() -> list[tuple[str, Doc]]:
    docs = []
    for path in sorted(EXAMPLES_DIR.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.relative_to(EXAMPLES_DIR)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


def is_subset(submitted: Any, stored: Any) -> bool:
    """True when everything submitted came back (defaults may add fields; pruning would drop some)."""
    if isinstance(submitted, dict):
        return isinstance(stored, dict) and all(k in stored and is_subset(v, stored[k]) for k, v in submitted.items())
    if isinstance(submitted, list):
        return isinstance(stored, list) and len(submitted) == len(stored) and all(map(is_subset, submitted, stored))
    return bool(submitted == stored)


def schema_of(crd: Doc) -> Doc:
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    return cast(Doc, version["schema"]["openAPIV3Schema"])


def undocumented(schema: Doc, path: str = "") -> list[str]:
    missing = [path or "<root>"] if not schema.get("description") else []
    for name, child in schema.get("properties", {}).items():
        missing += undocumented(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            missing += undocumented(schema[key], f"{path}[{key}]")
    return missing


# ------------------------------------------------------------------------------ (a) installed, documented


def test_crds_are_established_with_the_designed_names(crds: dict[str, Doc]) -> None:
    assert set(crds) == {f"{plural}.{GROUP}" for plural in PLURALS.values()}
    short_names = set()
    for crd in crds.values():
        spec = crd["spec"]
        assert spec["group"] == GROUP and spec["scope"] == "Namespaced"
        assert [(v["name"], v["served"], v["storage"]) for v in spec["versions"]] == [(VERSION, True, True)]
        assert spec["versions"][0]["subresources"] == {"status": {}}
        assert spec["names"]["categories"] == ["mintplane"]
        short_names.update(spec["names"]["shortNames"])
        assert crd["status"]["acceptedNames"]["kind"] == spec["names"]["kind"]
    assert short_names == {"mpchain", "mpep", "mpij", "mpcol"}


def test_every_field_carries_a_description(crds: dict[str, Doc]) -> None:
    for name, crd in crds.items():
        # metadata is the API server's ObjectMeta: a CRD may not describe it.
        missing = [p for p in undocumented(schema_of(crd)) if p != ".metadata"]
        assert missing == [], f"{name}: fields without description: {missing}"


def test_schemas_are_structural_without_preserved_unknown_fields(crds: dict[str, Doc]) -> None:
    for name, crd in crds.items():
        assert "x-kubernetes-preserve-unknown-fields" not in json.dumps(schema_of(crd)), name
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("NonStructuralSchema", "False") == "False", name


# ------------------------------------------------------------------------------------ (b) examples

EXAMPLES = example_docs()


@pytest.mark.parametrize(("label", "doc"), EXAMPLES, ids=[label for label, _ in EXAMPLES])
def test_example_is_accepted_as_written(kube: client.ApiClient, objects: Objects, label: str, doc: Doc) -> None:
    """Strict field validation: a misspelled field in an example is refused instead of silently pruned."""
    if doc["apiVersion"] != API_VERSION:
        assert doc["kind"] == "Secret", f"{label}: unexpected kind in examples"
        assert all("REPLACE_WITH" in value for value in doc["stringData"].values()), "examples hold placeholders only"
        stored = _as_dict(kube, client.CoreV1Api(kube).create_namespaced_secret(
            objects.namespace, doc, dry_run="All", field_validation="Strict"))  # type: ignore[arg-type]
        assert stored["metadata"]["name"] == doc["metadata"]["name"]
        return
    stored = objects.create(doc, dry_run="All", field_validation="Strict")
    assert is_subset(doc["spec"], stored["spec"]), f"{label}: stored spec lost fields: {stored['spec']}"


def test_anvil_example_matches_the_dev_chain() -> None:
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all((EXAMPLES_DIR / "chains" / "anvil.yaml").read_text())}
    assert docs["Chain"]["spec"]["caip2"] == "eip155:31337" and docs["Chain"]["spec"]["indexer"]["enabled"] is True
    assert docs["ChainEndpoint"]["spec"]["url"] == "http://127.0.0.1:8545"
    assert docs["ChainEndpoint"]["spec"]["chainRef"] == docs["Chain"]["metadata"]["name"]


def test_defaults_are_filled_in(objects: Objects) -> None:
    bare_chain = chain_doc()
    bare_chain["spec"] = {k: bare_chain["spec"][k] for k in ("caip2", "chainId", "name", "nativeSymbol")}
    spec = objects.create(bare_chain, dry_run="All")["spec"]
    assert spec["enabled"] is True and spec["decimals"] == 18
    assert spec["indexer"] == {"enabled": False, "confirmations": 12, "batchSize": 500}

    with_gas = edited(bare_chain, {"spec.gasPolicy": {"maxFeeGwei": "10"}})
    assert objects.create(with_gas, dry_run="All")["spec"]["gasPolicy"]["multiplier"] == 1.25

    endpoint = objects.create(endpoint_doc(), dry_run="All")["spec"]
    assert (endpoint["weight"], endpoint["enabled"], endpoint["authType"], endpoint["probeIntervalSeconds"]) == (
        100, True, "none", 30)
    keyed = edited(endpoint_doc(), {"spec.authType": "bearer", "spec.secretRef": {"name": "rpc-keys"}})
    assert objects.create(keyed, dry_run="All")["spec"]["secretRef"] == {"name": "rpc-keys", "key": "apiKey"}
    assert objects.create(job_doc(), dry_run="All")["spec"]["backoffLimit"] == 3


# ----------------------------------------------------------------------------- (c) refused on create

INVALID_ON_CREATE = [
    # Chain
    pytest.param("Chain", {"spec.caip2": "ethereum-mainnet"}, "spec.caip2 in body should match", id="caip2-pattern"),
    pytest.param("Chain", {"spec.caip2": "eip155:0x1", "spec.chainId": 1},
                 "an eip155 caip2 must be eip155:<decimal chain id", id="caip2-eip155-not-decimal"),
    pytest.param("Chain", {"spec.caip2": "eip155:31337", "spec.chainId": 1},
                 "chainId must equal the number in the eip155 caip2: eip155:31337 needs chainId 31337",
                 id="chainid-mismatch"),
    pytest.param("Chain", {"spec.caip2": "eip155:10", "spec.chainId": REMOVE}, "spec.chainId: Required value",
                 id="chainid-missing"),
    pytest.param("Chain", {"spec.chainId": 2**31}, "spec.chainId in body should be less than or equal to 2147483647",
                 id="chainid-above-registry-range"),
    pytest.param("Chain", {"spec.caip2": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"},
                 "only EVM chains are supported (CAIP-2 namespace eip155)", id="non-evm-namespace"),
    pytest.param("Chain", {"spec.nativeSymbol": REMOVE}, "spec.nativeSymbol: Required value", id="missing-required"),
    pytest.param("Chain", {"spec.explorerUrl": "etherscan.io"}, "spec.explorerUrl in body should match",
                 id="explorer-url-not-a-url"),
    pytest.param("Chain", {"spec.features": ["eip1559", "eip9999"]}, 'Unsupported value: "eip9999"',
                 id="feature-not-in-enum"),
    pytest.param("Chain", {"spec.gasPolicy": {"maxFeeGwei": "10", "priorityFeeGwei": "10.000000001"}},
                 "gasPolicy.priorityFeeGwei must not exceed gasPolicy.maxFeeGwei (10.000000001 > 10 gwei)",
                 id="gas-priority-above-max"),
    pytest.param("Chain", {"spec.gasPolicy": {"maxFeeGwei": "1e3"}}, "spec.gasPolicy.maxFeeGwei in body should match",
                 id="gas-not-a-decimal"),
    pytest.param("Chain", {"spec.gasPolicy": {"maxFeeGwei": "10", "multiplier": 0.5}},
                 "spec.gasPolicy.multiplier in body should be greater than or equal to 1", id="gas-multiplier-below-1"),
    pytest.param("Chain", {"spec.indexer.confirmations": 5000},
                 "spec.indexer.confirmations in body should be less than or equal to 1024",
                 id="confirmations-too-high"),
    pytest.param("Chain", {"spec.indexer.batchSize": 0},
                 "spec.indexer.batchSize in body should be greater than or equal to 1", id="batch-size-zero"),
    pytest.param("Chain", {"spec.indexer.resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}},
                 "each resources.requests value must be less than or equal to the matching limit",
                 id="resources-request-above-limit"),
    pytest.param("Chain", {"spec.indexer.resources": {"limits": {"gpu": 1}}},
                 "resource names must be cpu, memory, ephemeral-storage", id="resources-unknown-name"),
    pytest.param("Chain", {"metadata.name": "a" * 51}, "metadata.name must be a DNS label of at most 50 characters",
                 id="chain-name-too-long"),
    # ChainEndpoint
    pytest.param("ChainEndpoint", {"spec.url": "ftp://rpc.example.com"}, "spec.url in body should match",
                 id="url-scheme"),
    pytest.param("ChainEndpoint", {"spec.url": "https://rpc.example.com/v1?apikey=s3cr3t"},
                 "url must not carry an API key or token in its query string", id="url-apikey"),
    pytest.param("ChainEndpoint", {"spec.url": "https://rpc.example.com/?network=main&api_key=s3cr3t"},
                 "url must not carry an API key or token in its query string", id="url-api_key"),
    pytest.param("ChainEndpoint", {"spec.url": "wss://rpc.example.com/ws?KEY=s3cr3t"},
                 "url must not carry an API key or token in its query string", id="url-key-uppercase"),
    pytest.param("ChainEndpoint", {"spec.url": "https://rpc.example.com/?access_token=s3cr3t"},
                 "url must not carry an API key or token in its query string", id="url-access-token"),
    pytest.param("ChainEndpoint", {"spec.url": "https://alice:s3cr3t@rpc.example.com"},
                 "url must not embed user:password@", id="url-userinfo"),
    pytest.param("ChainEndpoint", {"spec.authType": "bearer"},
                 "secretRef is required when authType is not none", id="auth-without-secretref"),
    pytest.param("ChainEndpoint", {"spec.secretRef": {"name": "rpc-keys"}},
                 "secretRef is set but authType is none", id="secretref-without-auth"),
    pytest.param("ChainEndpoint", {"spec.authType": "header", "spec.secretRef": {"name": "rpc-keys"}},
                 "authParam (header or query parameter name) is required for authType header or query",
                 id="header-auth-without-param"),
    pytest.param("ChainEndpoint", {"spec.authType": "oauth"}, 'Unsupported value: "oauth"', id="authtype-not-in-enum"),
    pytest.param("ChainEndpoint", {"spec.priority": -1}, "spec.priority in body should be greater than or equal to 0",
                 id="negative-priority"),
    pytest.param("ChainEndpoint", {"spec.weight": 0}, "spec.weight in body should be greater than or equal to 1",
                 id="zero-weight"),
    pytest.param("ChainEndpoint", {"spec.probeIntervalSeconds": 1},
                 "spec.probeIntervalSeconds in body should be greater than or equal to 5", id="probe-too-often"),
    pytest.param("ChainEndpoint", {"spec.chainRef": "Mainnet"}, "spec.chainRef in body should match",
                 id="chainref-not-a-dns-label"),
    # IndexerJob
    pytest.param("IndexerJob", {"spec.fromBlock": 200, "spec.toBlock": 100},
                 "toBlock must be greater than or equal to fromBlock", id="toblock-before-fromblock"),
    pytest.param("IndexerJob", {"spec.fromBlock": -1}, "spec.fromBlock in body should be greater than or equal to 0",
                 id="negative-block"),
    pytest.param("IndexerJob", {"spec.toBlock": REMOVE}, "spec.toBlock: Required value", id="missing-toblock"),
    pytest.param("IndexerJob", {"spec.contracts": ["0x1234"]}, "spec.contracts[0] in body should match",
                 id="contract-bad-address"),
    pytest.param("IndexerJob", {"spec.contracts": ["0x5FbDB2315678afecb367f032d93F642f64180aa3"] * 2},
                 "Duplicate value", id="contract-duplicate"),
    # Collection
    pytest.param("Collection", {"spec.address": "0x5FbDB2315678afecb367f032d93F642f64180aa"},
                 "spec.address in body should match", id="collection-bad-address"),
    pytest.param("Collection", {"spec.address": "0x" + "0" * 40}, "address must not be the zero address",
                 id="collection-zero-address"),
    pytest.param("Collection", {"spec.standard": "ERC20"}, 'Unsupported value: "ERC20"', id="standard-not-in-enum"),
    pytest.param("Collection", {"spec.slug": "My-Collection"}, "spec.slug in body should match", id="slug-uppercase"),
    pytest.param("Collection", {"spec.slug": "-edge-"}, "spec.slug in body should match", id="slug-leading-dash"),
    pytest.param("Collection", {"spec.name": REMOVE}, "spec.name: Required value", id="collection-missing-name"),
]


@pytest.mark.parametrize(("kind", "edits", "expected"), INVALID_ON_CREATE)
def test_invalid_resource_is_refused(objects: Objects, kind: str, edits: dict[str, Any], expected: str) -> None:
    doc = edited(BUILDERS[kind](), edits)
    status, message = refusal(lambda: objects.create(doc))
    assert status == 422, message
    assert expected in message, message
    assert "s3cr3t" not in message, "a refused credential must not be echoed back"


def test_valid_baselines_are_accepted(objects: Objects) -> None:
    """Guards the table above: each refusal comes from its edit, not from a broken baseline."""
    for kind, build in BUILDERS.items():
        assert objects.create(build(), dry_run="All")["kind"] == kind
    mainnet = edited(chain_doc(), {"spec.caip2": "eip155:1", "spec.chainId": 1})
    assert objects.create(mainnet, dry_run="All")["spec"]["chainId"] == 1
    query_auth = edited(endpoint_doc(), {
        "spec.url": "https://rpc.example.com/?network=mainnet", "spec.authType": "query",
        "spec.authParam": "apikey", "spec.secretRef": {"name": "k", "key": "v"},
    })
    assert objects.create(query_auth, dry_run="All")["spec"]["authParam"] == "apikey"


def test_unknown_field_is_refused_when_strict_and_pruned_otherwise(objects: Objects) -> None:
    doc = edited(chain_doc(), {"spec.rpcUrl": "https://rpc.example.com", "spec.indexer.replicas": 3})
    status, message = refusal(lambda: objects.create(doc, dry_run="All", field_validation="Strict"))
    assert status == 400, message
    assert 'unknown field "spec.rpcUrl"' in message and 'unknown field "spec.indexer.replicas"' in message, message

    stored = objects.create(doc)  # default fieldValidation (Warn): stored, unknown fields pruned
    for obj in (stored, objects.get(doc)):
        assert "rpcUrl" not in obj["spec"] and "replicas" not in obj["spec"]["indexer"]
        assert obj["spec"]["caip2"] == doc["spec"]["caip2"]


# ----------------------------------------------------------------------------- (c) refused on update

INVALID_ON_UPDATE = [
    pytest.param("Chain", {"spec": {"caip2": "eip155:1", "chainId": 1}}, "caip2 is immutable", id="caip2-changed"),
    pytest.param("Chain", {"spec": {"chainId": 7}}, "chainId is immutable", id="chainid-changed"),
    pytest.param("ChainEndpoint", {"spec": {"chainRef": "other-chain"}}, "chainRef is immutable",
                 id="endpoint-chainref-changed"),
    pytest.param("IndexerJob", {"spec": {"toBlock": 5000}}, "the block range (fromBlock, toBlock) is immutable",
                 id="job-range-changed"),
    pytest.param("IndexerJob", {"spec": {"contracts": None}}, "contracts is immutable", id="job-contracts-removed"),
    pytest.param("Collection", {"spec": {"address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}},
                 "address is immutable", id="collection-address-changed"),
    pytest.param("Collection", {"spec": {"chainRef": "other-chain"}}, "chainRef is immutable",
                 id="collection-chainref-changed"),
    pytest.param("Collection", {"spec": {"standard": "ERC1155"}}, "standard is immutable",
                 id="collection-standard-changed"),
]


@pytest.mark.parametrize(("kind", "patch", "expected"), INVALID_ON_UPDATE)
def test_immutable_field_cannot_change(objects: Objects, kind: str, patch: Doc, expected: str) -> None:
    doc = BUILDERS[kind]()
    created = objects.create(doc)
    status, message = refusal(lambda: objects.merge_patch(doc, patch))
    assert status == 422, message
    assert expected in message, message
    assert objects.get(doc)["spec"] == created["spec"], "a refused patch must change nothing"


def test_mutable_fields_still_change(objects: Objects) -> None:
    chain = chain_doc()
    objects.create(chain)
    patched = objects.merge_patch(chain, {"spec": {"name": "Renamed", "enabled": True,
                                                   "gasPolicy": {"maxFeeGwei": "200"}}})
    assert (patched["spec"]["name"], patched["spec"]["gasPolicy"]["maxFeeGwei"]) == ("Renamed", "200")

    collection = collection_doc()
    objects.create(collection)
    lowered = collection["spec"]["address"].lower()  # same contract, other letter case: allowed
    patched = objects.merge_patch(collection, {"spec": {"address": lowered, "slug": "renamed"}})
    assert (patched["spec"]["address"], patched["spec"]["slug"]) == (lowered, "renamed")


# ------------------------------------------------------------------------- status subresource contract

STATUS: dict[str, Doc] = {
    "Chain": {"headBlock": 123, "indexerLag": 4, "registryId": 7, "indexerDeployment": "indexer-x",
              "endpoints": {"total": 2, "healthy": 1}},
    "ChainEndpoint": {"host": "https://rpc.example.com", "healthy": False, "score": "red", "latencyMs": 41,
                      "headBlock": 120, "blocksBehind": 3, "reportedChainId": 5, "registryId": 9,
                      "lastError": "wrong chain id: endpoint answered 5", "lastProbeTime": "2026-01-02T03:04:05Z"},
    "IndexerJob": {"phase": "Running", "jobName": "ij-backfill", "startTime": "2026-01-02T03:04:05Z",
                   "progress": {"lastBlock": 150, "blocksDone": 51, "blocksTotal": 101, "percent": 50,
                                "eventsIndexed": 12}},
    "Collection": {"phase": "Indexing", "indexedTokens": 42, "contractId": 3,
                   "catalogCollectionId": "0b8f6c0e-8a43-4d3e-9c55-3f1f3f1f3f1f"},
}
BAD_STATUS = {
    "Chain": ({"headBlock": -1}, "status.headBlock: Invalid value: -1"),
    "ChainEndpoint": ({"score": "blue"}, 'Unsupported value: "blue"'),
    "IndexerJob": ({"phase": "Exploded"}, 'Unsupported value: "Exploded"'),
    "Collection": ({"catalogCollectionId": "not-a-uuid"}, "catalogCollectionId in body must be of type uuid"),
}
# A spec change smuggled into a status write, which the status subresource must ignore.
SPEC_THROUGH_STATUS = {
    "Chain": {"name": "changed"}, "ChainEndpoint": {"priority": 999},
    "IndexerJob": {"toBlock": 999999}, "Collection": {"name": "changed"},
}


@pytest.mark.parametrize("kind", list(PLURALS))
def test_status_subresource_takes_the_operator_fields(objects: Objects, kind: str) -> None:
    doc = BUILDERS[kind]()
    created = objects.create(doc)
    condition = {"type": "Ready", "status": "False", "reason": "Probing", "message": "first probe pending",
                 "lastTransitionTime": "2026-01-02T03:04:05Z", "observedGeneration": created["metadata"]["generation"]}
    status = {**STATUS[kind], "observedGeneration": 1, "conditions": [condition]}
    written = objects.patch_status(doc, {"status": status, "spec": SPEC_THROUGH_STATUS[kind]},
                                   field_validation="Strict")
    assert written["status"] == status
    assert written["spec"] == created["spec"], "the status subresource must not change spec"

    bad, expected = BAD_STATUS[kind]
    code, message = refusal(lambda: objects.patch_status(doc, {"status": bad}))
    assert code == 422 and expected in message, message
    incomplete = {"conditions": [{"type": "Ready", "status": "True"}]}
    code, message = refusal(lambda: objects.patch_status(doc, {"status": incomplete}))
    assert code == 422 and "status.conditions[0].reason: Required value" in message, message


def test_endpoints_are_selectable_by_chain(objects: Objects) -> None:
    mine = [edited(endpoint_doc(), {"spec.chainRef": "chain-a"}) for _ in range(2)]
    other = edited(endpoint_doc(), {"spec.chainRef": "chain-b"})
    for doc in [*mine, other]:
        objects.create(doc)
    selected = objects.names("ChainEndpoint", field_selector="spec.chainRef=chain-a")
    assert selected == sorted(doc["metadata"]["name"] for doc in mine)


# ------------------------------------------------------------------------------ (d) kubectl get


def test_printer_columns_are_declared(crds: dict[str, Doc]) -> None:
    def columns(plural: str) -> list[Doc]:
        return cast(list[Doc], crds[f"{plural}.{GROUP}"]["spec"]["versions"][0]["additionalPrinterColumns"])

    def default_names(plural: str) -> list[str]:
        return [c["name"] for c in columns(plural) if c.get("priority", 0) == 0]

    assert default_names("chains") == ["CAIP2", "Ready", "Head", "Lag", "Endpoints", "Healthy", "Age"]
    assert default_names("chainendpoints") == ["Chain", "Host", "Priority", "Healthy", "Latency(ms)", "Behind", "Age"]
    assert default_names("indexerjobs") == ["Chain", "From", "To", "Phase", "Progress(%)", "Age"]
    assert default_names("collections") == ["Chain", "Standard", "Address", "Phase", "Tokens", "Meta-OK",
                                            "Meta-Pending", "Meta-Failed", "Age"]
    endpoint_paths = [c["jsonPath"] for c in columns("chainendpoints")]
    assert ".spec.url" not in endpoint_paths, "the URL may hold a path-embedded key: never print it"


def _table(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_kubectl_get_shows_status_columns(objects: Objects, kubectl: Callable[..., str]) -> None:
    chain = chain_doc()
    objects.create(chain)
    objects.patch_status(chain, {"status": {
        "headBlock": 4242, "indexerLag": 3, "endpoints": {"total": 2, "healthy": 1},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Synced", "message": "",
                        "lastTransitionTime": "2026-01-02T03:04:05Z"}],
    }})
    header, row = _table(kubectl("get", "chains", "-n", objects.namespace))
    assert header == ["NAME", "CAIP2", "READY", "HEAD", "LAG", "ENDPOINTS", "HEALTHY", "AGE"]
    assert row[:7] == [chain["metadata"]["name"], chain["spec"]["caip2"], "True", "4242", "3", "2", "1"]
    wide_header = _table(kubectl("get", "mpchain", "-n", objects.namespace, "-o", "wide"))[0]
    assert {"DISPLAY", "ENABLED", "INDEXER"} <= set(wide_header)


def test_kubectl_get_mintplane_lists_every_kind(objects: Objects, kubectl: Callable[..., str]) -> None:
    docs = [build() for build in BUILDERS.values()]
    for doc in docs:
        objects.create(doc)
    output = kubectl("get", "mintplane", "-n", objects.namespace, "-o", "name")
    assert set(output.split()) == {f"{doc['kind'].lower()}.{GROUP}/{doc['metadata']['name']}" for doc in docs}


# ---------------------------------------------------------------------------- (e) kubectl explain


def test_kubectl_explain_teaches_the_api(kubectl: Callable[..., str], crds: dict[str, Doc]) -> None:
    # The API server republishes OpenAPI a moment after a CRD changes; allow it a few seconds.
    deadline = time.monotonic() + 20
    output = kubectl("explain", "chain.spec.caip2")
    while "CAIP-2 chain identifier" not in output and time.monotonic() < deadline:
        time.sleep(0.5)
        output = kubectl("explain", "chain.spec.caip2")
    assert "CAIP-2 chain identifier" in output and "Immutable" in output, output
    assert "authType" in kubectl("explain", "chainendpoint.spec")
    assert "Last block to index (inclusive)" in kubectl("explain", "indexerjob.spec.toBlock")
    assert "DNS-label-like" in kubectl("explain", "mpcol.spec.slug")
