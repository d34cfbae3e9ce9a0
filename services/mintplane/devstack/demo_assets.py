"""The demo collection's token metadata and images, generated the same way on every machine.

`make up` mints a demo ERC-721 collection on anvil so the catalog has something real to browse. Its tokens
need what a real collection has: OpenSea-style documents with string traits of skewed frequencies (so
rarity means something), traits some tokens lack (OpenRarity's "null" value), a numeric and a date trait
(left out of the score), images, and some documents kept on chain as ``data:`` URIs (base64 and plain
JSON). Everything comes from a seeded RNG, so the documents, and therefore rarity ranks, are reproducible.

The documents are served by the dev stack's loopback file server (:mod:`mintplane.devstack.fileserver`)
at ``<base>/<token id>`` (no extension, as ``baseURI + tokenId`` asks; the server answers those as JSON),
the images at ``<base>/images/<token id>.svg``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SUPPLY = 300
SEED = 9  # issue 9
COLLECTION_DIR = "anvil-demo"
# Token ids whose documents live on chain (setTokenURI): every 25th, alternating base64 and plain JSON.
ON_CHAIN_EVERY = 25

# (value, weight): skewed on purpose, so a Gold background or a Crown is rare and scores high.
BACKGROUND = (("Sky", 30), ("Mint", 25), ("Sand", 20), ("Lilac", 15), ("Gold", 7), ("Void", 3))
BODY = (("Robot", 35), ("Human", 30), ("Alien", 18), ("Zombie", 12), ("Ghost", 5))
EYES = (("Round", 40), ("Sleepy", 25), ("Wink", 17), ("Laser", 10), ("Visor", 6), ("Diamond", 2))
# None: the token has no such attribute at all (OpenRarity counts it as the "null" value).
HAT = ((None, 40), ("Cap", 25), ("Beanie", 18), ("Top Hat", 10), ("Crown", 5), ("Halo", 2))
ACCESSORY = ((None, 60), ("Earring", 18), ("Chain", 12), ("Monocle", 7), ("Pipe", 3))

COLORS = {"Sky": "#7cc4f4", "Mint": "#8ee6c1", "Sand": "#e9d8a6", "Lilac": "#c9a7eb", "Gold": "#f2c94c",
          "Void": "#1f1f2e"}
SKIN = {"Robot": "#9aa5b1", "Human": "#f1c27d", "Alien": "#7bd389", "Zombie": "#8fae7a", "Ghost": "#f4f4f8"}
BORN_FROM = datetime(2021, 1, 1, tzinfo=UTC)
BORN_SPAN_SECONDS = 4 * 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class DemoToken:
    token_id: int
    document: dict[str, Any]
    image_svg: str

    @property
    def on_chain(self) -> bool:
        return self.token_id % ON_CHAIN_EVERY == 0

    def data_uri(self) -> str:
        """The on-chain form: base64 for even multiples of ON_CHAIN_EVERY, percent-encoded plain JSON otherwise."""
        text = json.dumps(self.document, separators=(",", ":"), sort_keys=True)
        if (self.token_id // ON_CHAIN_EVERY) % 2 == 0:
            return "data:application/json;base64," + base64.b64encode(text.encode()).decode()
        return "data:application/json," + urllib.parse.quote(text, safe="")


def _pick(rng: random.Random, table: Sequence[tuple[str | None, int]]) -> str | None:
    values = [value for value, _ in table]
    weights = [weight for _, weight in table]
    return rng.choices(values, weights=weights, k=1)[0]


def _svg(token_id: int, background: str, body: str, eyes: str, hat: str | None) -> str:
    """A 64x64 picture of the token: background colour, a head in the body's colour, the eyes named."""
    crown = ('<polygon points="20,18 26,8 32,16 38,8 44,18" fill="#f2c94c"/>' if hat in ("Crown", "Halo")
             else '<rect x="18" y="12" width="28" height="7" rx="2" fill="#333"/>' if hat else "")
    laser = "#ff3b30" if eyes == "Laser" else "#111"
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'<rect width="64" height="64" fill="{COLORS[background]}"/>'
        f'<rect x="16" y="18" width="32" height="36" rx="8" fill="{SKIN[body]}"/>'
        f'<circle cx="26" cy="32" r="3" fill="{laser}"/><circle cx="38" cy="32" r="3" fill="{laser}"/>'
        f"{crown}"
        f'<text x="32" y="62" font-size="7" text-anchor="middle" fill="#000">#{token_id}</text></svg>'
    )


def tokens(base_url: str, supply: int = SUPPLY, seed: int = SEED) -> Iterator[DemoToken]:
    """The demo tokens 1..supply; ``base_url`` is where the file server serves COLLECTION_DIR."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, nothing secret
    for token_id in range(1, supply + 1):
        background, body, eyes = _pick(rng, BACKGROUND), _pick(rng, BODY), _pick(rng, EYES)
        hat, accessory = _pick(rng, HAT), _pick(rng, ACCESSORY)
        assert background is not None and body is not None and eyes is not None
        level = min(50, 1 + int(rng.expovariate(1 / 8)))  # most are low level, a few reach 50
        born = int(BORN_FROM.timestamp()) + rng.randrange(BORN_SPAN_SECONDS)
        attributes: list[dict[str, Any]] = [
            {"trait_type": "Background", "value": background},
            {"trait_type": "Body", "value": body},
            {"trait_type": "Eyes", "value": eyes},
        ]
        if hat is not None:
            attributes.append({"trait_type": "Hat", "value": hat})
        if accessory is not None:
            attributes.append({"trait_type": "Accessory", "value": accessory})
        attributes.append({"trait_type": "Level", "value": level, "display_type": "number", "max_value": 50})
        attributes.append({"trait_type": "Born", "value": born, "display_type": "date"})
        svg = _svg(token_id, background, body, eyes, hat)
        token = DemoToken(token_id, {}, svg)
        image = (
            "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode() if token.on_chain
            else f"{base_url}/images/{token_id}.svg"
        )
        document = {
            "name": f"Mintplane Demo #{token_id}",
            "description": "A generated token of the mintplane dev stack's demo collection.",
            "image": image,
            "external_url": f"{base_url}/{token_id}",
            "attributes": attributes,
        }
        yield DemoToken(token_id, document, svg)


def write_assets(root: Path, base_url: str, supply: int = SUPPLY) -> Path:
    """Write every document and image under ``root/COLLECTION_DIR`` (skipped when already current: a
    stamp holds the digest of what was written). Returns the collection folder."""
    folder = root / COLLECTION_DIR
    generated = list(tokens(base_url, supply))
    digest = hashlib.sha256(json.dumps([t.document for t in generated], sort_keys=True).encode()).hexdigest()
    stamp = folder / ".generated"
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return folder
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for token in generated:
        (folder / str(token.token_id)).write_text(json.dumps(token.document, indent=1, sort_keys=True))
        (folder / "images" / f"{token.token_id}.svg").write_text(token.image_svg)
    (root / "index.json").write_text(json.dumps({"collections": [COLLECTION_DIR], "tokens": supply}))
    stamp.write_text(digest)
    return folder
