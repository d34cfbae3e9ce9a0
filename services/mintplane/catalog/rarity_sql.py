"""SQL of the rarity recompute and the explanation (see :mod:`mintplane.catalog.rarity` for the model).

Every statement covers a whole collection or a whole batch of tokens: no per-row round trips. Scores are
computed in ``numeric`` (the logarithms at 30 decimal places, each contribution rounded to
``CONTRIBUTION_SCALE`` places, 1e-15), and a token's score is the exact sum of the contributions its explanation
shows.
"""

from __future__ import annotations

from mintplane.catalog.traits import TRAIT_COUNT_NAME

CONTRIBUTION_SCALE = 15
# Per-token sums run over a million links: in integer units of 10^-CONTRIBUTION_SCALE they are exact and sum
# in 128-bit integers, several times faster than numeric.
_UNITS = f"1{'0' * CONTRIBUTION_SCALE}"
# OpenRarity ranks two scores alike when math.isclose says so (relative tolerance 1e-9).
TIE_RELATIVE_TOLERANCE = "1e-9"
META_TRAIT_DISPLAY_NAME = "Trait count"
META_SORT_ORDER = 1_000_000  # after every real trait in facet lists

# The tokens that are ranked: metadata read, not burned. Tokens still pending or failed would otherwise all
# count as "every trait null" and distort every other token's score.
_POPULATION = """
SELECT id, token_number FROM catalog.tokens
 WHERE collection_id = $1 AND metadata_status = 'ok' AND NOT burned
"""

# The scoring statement hashes and sorts every link and token of the collection once; in the default 4 MB
# those spill to disk. CTE row estimates are far off (40,000 values guessed for a few hundred), which makes
# the planner sort a million links for a merge join where hashing a few hundred values is the obvious plan.
# For the recompute's transaction only.
WORK_MEM = "SET LOCAL work_mem = '256MB'; SET LOCAL enable_mergejoin = off"

TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended('mintplane.catalog.rarity:' || $1::uuid::text, 0))"

DIRTY_COLLECTIONS = """
SELECT collection_id FROM catalog.collection_stats WHERE rarity_dirty ORDER BY collection_id LIMIT $1
"""

# Collections whose ranking no longer matches who is in it: a burn (the consumer) or a metadata fetch that
# failed after an earlier success changes the population without a trait write, so nothing marked them dirty.
STALE_COLLECTIONS = """
SELECT s.collection_id FROM catalog.collection_stats s
 WHERE NOT s.rarity_dirty AND s.rarity_computed_at IS NOT NULL
   AND EXISTS (SELECT 1 FROM catalog.tokens t
                WHERE t.collection_id = s.collection_id
                  AND (t.metadata_status = 'ok' AND NOT t.burned) <> (t.rarity_rank IS NOT NULL))
"""

MARK_DIRTY = "UPDATE catalog.collection_stats SET rarity_dirty = true WHERE collection_id = $1 AND NOT rarity_dirty"

ENSURE_META_TRAIT = f"""
WITH made AS (
    INSERT INTO catalog.traits (collection_id, name, normalized_name, value_type, is_meta, sort_order)
    VALUES ($1, '{META_TRAIT_DISPLAY_NAME}', '{TRAIT_COUNT_NAME}', 'string', true, {META_SORT_ORDER})
    ON CONFLICT (collection_id, normalized_name) DO NOTHING
    RETURNING id
)
SELECT id FROM made
UNION ALL
SELECT id FROM catalog.traits WHERE collection_id = $1 AND normalized_name = '{TRAIT_COUNT_NAME}'
"""  # noqa: S608 - only module constants are interpolated

# The trait-count trait as OpenRarity forms it (Token.trait_count): the token's traits of every type, less
# string traits whose value is "none" or empty; its value is that number as text. Values are upserted and each
# ranked token's one link to the trait is set; tokens that left the ranking lose theirs. $2 = meta trait id.
SET_TRAIT_COUNTS = f"""
WITH pop AS ({_POPULATION}),
uncounted AS (  -- string values the trait count leaves out
    SELECT v.id FROM catalog.traits tr JOIN catalog.trait_values v ON v.trait_id = tr.id
     WHERE tr.collection_id = $1 AND tr.value_type = 'string' AND v.normalized_value IN ('none', '')
),
per_token AS (  -- per trait through its index, as in SCORE
    SELECT l.token_id, count(*) AS n
      FROM catalog.traits tr
     CROSS JOIN LATERAL (SELECT x.token_id, x.trait_value_id FROM catalog.token_trait_links x
                          WHERE x.trait_id = tr.id OFFSET 0) AS l
     WHERE tr.collection_id = $1 AND tr.id <> $2
       AND l.trait_value_id NOT IN (SELECT id FROM uncounted)
     GROUP BY l.token_id
),
counts AS (
    SELECT p.id AS token_id, coalesce(pt.n, 0) AS n FROM pop p LEFT JOIN per_token pt ON pt.token_id = p.id
),
made AS (
    INSERT INTO catalog.trait_values (trait_id, value_string, value_number, normalized_value)
    SELECT DISTINCT $2::uuid, n::text, n::numeric, n::text FROM counts
    ON CONFLICT (trait_id, normalized_value) DO NOTHING
    RETURNING id, normalized_value
),
meta_values AS (
    SELECT id, normalized_value FROM made
    UNION ALL
    SELECT id, normalized_value FROM catalog.trait_values WHERE trait_id = $2
),
wanted AS (
    SELECT c.token_id, mv.id AS trait_value_id FROM counts c JOIN meta_values mv ON mv.normalized_value = c.n::text
),
gone AS (
    DELETE FROM catalog.token_trait_links l
     WHERE l.trait_id = $2
       AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.token_id = l.token_id AND w.trait_value_id = l.trait_value_id)
)
INSERT INTO catalog.token_trait_links (token_id, trait_id, trait_value_id)
SELECT w.token_id, $2, w.trait_value_id FROM wanted w
 WHERE NOT EXISTS (SELECT 1 FROM catalog.token_trait_links l
                    WHERE l.token_id = w.token_id AND l.trait_id = $2 AND l.trait_value_id = w.trait_value_id)
"""  # noqa: S608 - only module constants are interpolated

# Occurrences of the trait-count values after the links moved; values and (non-meta) traits nobody carries go.
TIDY_AFTER_TRAIT_COUNTS = """
WITH counts AS (
    SELECT v.id, count(l.token_id) AS n
      FROM catalog.trait_values v LEFT JOIN catalog.token_trait_links l ON l.trait_value_id = v.id
     WHERE v.trait_id = $2
     GROUP BY v.id
),
dropped AS (
    DELETE FROM catalog.trait_values v USING counts c WHERE v.id = c.id AND c.n = 0
),
recounted AS (
    UPDATE catalog.trait_values v SET occurrences = c.n FROM counts c
     WHERE v.id = c.id AND c.n > 0 AND v.occurrences IS DISTINCT FROM c.n
)
DELETE FROM catalog.traits t
 WHERE t.collection_id = $1 AND NOT t.is_meta
   AND NOT EXISTS (SELECT 1 FROM catalog.trait_values v WHERE v.trait_id = t.id)
"""

# The whole score in one statement. N ranked tokens; per string trait T (the trait-count trait included) and
# value v: n_v tokens, null_T = N - sum n_v. IC(v) = log2(N / n_v); the collection entropy
# H = sum p log2(1/p) over every value and every non-empty null; contribution(v) = IC(v) / (H or 1).
# score(token) = sum over T of null contribution(T) + sum over its links (contribution(v) - null contribution(T)),
# i.e. exactly the sum of the contributions the explanation lists. Rank as OpenRarity's RarityRanker: sort by
# (unique attribute count, score) descending, and a score within 1e-9 (relative) of the previous one shares its
# rank (RANK, not DENSE_RANK). Writes contributions, null counts and scores, tokens' scores and ranks (only
# where they changed, returning those tokens), and the collection's entropy; clears the dirty flag.
SCORE = f"""
WITH pop AS ({_POPULATION}),
total AS (SELECT count(*)::numeric AS n FROM pop),
links AS MATERIALIZED (  -- per trait through its index: the cost follows the collection, not the table
    SELECT l.token_id, l.trait_id, l.trait_value_id
      FROM catalog.traits tr
     CROSS JOIN LATERAL (SELECT x.token_id, x.trait_id, x.trait_value_id FROM catalog.token_trait_links x
                          WHERE x.trait_id = tr.id OFFSET 0) AS l  -- OFFSET 0: not flattened into a seq scan
      JOIN pop ON pop.id = l.token_id
     WHERE tr.collection_id = $1 AND tr.value_type = 'string'
),
value_counts AS (
    SELECT trait_value_id, trait_id, count(*)::numeric AS n FROM links GROUP BY trait_value_id, trait_id
),
trait_counts AS (
    SELECT vc.trait_id, (SELECT n FROM total) - sum(vc.n) AS null_n FROM value_counts vc GROUP BY vc.trait_id
),
logs AS (SELECT ln(n::numeric(60, 30)) AS ln_total, ln(2::numeric(60, 30)) AS ln2 FROM total WHERE n > 0),
probabilities AS (
    SELECT n / (SELECT n FROM total) AS p FROM value_counts
    UNION ALL
    SELECT null_n / (SELECT n FROM total) FROM trait_counts WHERE null_n > 0
),
entropy AS (
    SELECT coalesce(sum(-p * ln(p::numeric(60, 30))), 0) / (SELECT ln2 FROM logs) AS h FROM probabilities
),
normaliser AS (SELECT CASE WHEN h > 0 THEN h ELSE 1 END AS h FROM entropy),
value_scores AS (
    SELECT vc.trait_value_id, vc.trait_id, vc.n,
           round((g.ln_total - ln(vc.n::numeric(60, 30))) / g.ln2 / z.h, {CONTRIBUTION_SCALE}) AS c
      FROM value_counts vc CROSS JOIN logs g CROSS JOIN normaliser z
),
null_scores AS (
    SELECT tc.trait_id, tc.null_n::integer AS null_n,
           CASE WHEN tc.null_n > 0
                THEN round((g.ln_total - ln(tc.null_n::numeric(60, 30))) / g.ln2 / z.h, {CONTRIBUTION_SCALE})
           END AS c
      FROM trait_counts tc CROSS JOIN logs g CROSS JOIN normaliser z
),
null_base AS (SELECT coalesce(sum(c), 0) AS s FROM null_scores),
value_deltas AS (
    SELECT vs.trait_value_id, vs.n = 1 AS unique_value, ((vs.c - coalesce(ns.c, 0)) * {_UNITS})::bigint AS d
      FROM value_scores vs LEFT JOIN null_scores ns ON ns.trait_id = vs.trait_id
),
token_sums AS (
    SELECT k.token_id, sum(vd.d) AS s, count(*) FILTER (WHERE vd.unique_value) AS uniques
      FROM links k JOIN value_deltas vd ON vd.trait_value_id = k.trait_value_id
     GROUP BY k.token_id
),
token_scores AS (
    SELECT p.id AS token_id, p.token_number,
           (SELECT s FROM null_base) + round(coalesce(ts.s, 0)::numeric / {_UNITS}, {CONTRIBUTION_SCALE}) AS score,
           coalesce(ts.uniques, 0) AS uniques
      FROM pop p LEFT JOIN token_sums ts ON ts.token_id = p.id
),
ordered AS (
    SELECT token_id, score, row_number() OVER w AS pos,
           CASE WHEN lag(score) OVER w IS NOT NULL
                 AND abs(score - lag(score) OVER w)
                     <= {TIE_RELATIVE_TOLERANCE} * greatest(abs(score), abs(lag(score) OVER w))
                THEN NULL ELSE row_number() OVER w END AS starts
      FROM token_scores
    WINDOW w AS (ORDER BY uniques DESC, score DESC, length(token_number), token_number)
),
ranked AS (SELECT token_id, score, (max(starts) OVER (ORDER BY pos))::integer AS rank FROM ordered),
set_values AS (
    UPDATE catalog.trait_values v SET rarity_score = x.c
      FROM (SELECT v2.id, vs.c
              FROM catalog.traits tr
              JOIN catalog.trait_values v2 ON v2.trait_id = tr.id
              LEFT JOIN value_scores vs ON vs.trait_value_id = v2.id
             WHERE tr.collection_id = $1) AS x
     WHERE v.id = x.id AND v.rarity_score IS DISTINCT FROM x.c
),
set_traits AS (
    UPDATE catalog.traits tr SET null_occurrences = x.null_n, null_rarity_score = x.c
      FROM (SELECT t2.id, coalesce(ns.null_n, 0) AS null_n, ns.c
              FROM catalog.traits t2 LEFT JOIN null_scores ns ON ns.trait_id = t2.id
             WHERE t2.collection_id = $1) AS x
     WHERE tr.id = x.id
       AND (tr.null_occurrences IS DISTINCT FROM x.null_n OR tr.null_rarity_score IS DISTINCT FROM x.c)
),
set_stats AS (
    INSERT INTO catalog.collection_stats (collection_id, rarity_entropy, rarity_computed_at, rarity_dirty)
    SELECT $1, (SELECT h FROM entropy), now(), false
    ON CONFLICT (collection_id) DO UPDATE
       SET rarity_entropy = excluded.rarity_entropy, rarity_computed_at = now(), rarity_dirty = false
),
unranked AS (
    UPDATE catalog.tokens t SET rarity_score = NULL, rarity_rank = NULL
     WHERE t.collection_id = $1 AND (t.rarity_score IS NOT NULL OR t.rarity_rank IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM pop WHERE pop.id = t.id)
    RETURNING t.id
),
reranked AS (
    UPDATE catalog.tokens t SET rarity_score = r.score, rarity_rank = r.rank
      FROM ranked r
     WHERE t.id = r.token_id
       AND (t.rarity_score IS DISTINCT FROM r.score OR t.rarity_rank IS DISTINCT FROM r.rank)
    RETURNING t.id
)
SELECT (SELECT n FROM total)::bigint AS tokens, (SELECT h FROM entropy) AS entropy,
       (SELECT array_agg(id) FROM (SELECT id FROM unranked UNION ALL SELECT id FROM reranked) AS c) AS changed
"""  # noqa: S608 - only module constants are interpolated

# One row per (token, trait) to explain: for a ranked token every counted trait of its collection (present
# value or the trait's null), plus every trait the token carries (number and date ones flagged not counted).
EXPLAIN = """
WITH tok AS (
    SELECT t.id, t.collection_id, t.rarity_score IS NOT NULL AS ranked
      FROM unnest($1::uuid[]) AS u(id) JOIN catalog.tokens t ON t.id = u.id
),
linked AS (
    SELECT l.token_id, l.trait_id, l.trait_value_id
      FROM catalog.token_trait_links l JOIN tok ON tok.id = l.token_id
),
counted AS (
    SELECT tok.id AS token_id, tr.id AS trait_id
      FROM tok JOIN catalog.traits tr ON tr.collection_id = tok.collection_id
     WHERE tok.ranked AND tr.value_type = 'string'
       AND EXISTS (SELECT 1 FROM catalog.trait_values v WHERE v.trait_id = tr.id AND v.rarity_score IS NOT NULL)
)
SELECT coalesce(c.token_id, k.token_id) AS token_id, tr.id AS trait_id, tr.name AS trait_name,
       tr.normalized_name, tr.display_type, tr.value_type, tr.is_meta, tr.sort_order,
       v.id AS trait_value_id, v.value_string, v.value_number, v.occurrences, tr.null_occurrences,
       k.trait_id IS NULL AS missing, tr.value_type = 'string' AS counted,
       CASE WHEN tr.value_type <> 'string' THEN NULL
            WHEN k.trait_id IS NULL THEN tr.null_rarity_score
            ELSE v.rarity_score END AS contribution
  FROM counted c
  FULL JOIN linked k ON k.token_id = c.token_id AND k.trait_id = c.trait_id
  JOIN catalog.traits tr ON tr.id = coalesce(c.trait_id, k.trait_id)
  LEFT JOIN catalog.trait_values v ON v.id = k.trait_value_id
 ORDER BY 1, tr.is_meta, tr.sort_order NULLS LAST, tr.normalized_name
"""
