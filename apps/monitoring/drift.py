"""Feature and prediction drift per window, against the training reference profile.

The statistics come from SciPy (maintained, already a dependency through scikit-learn):
a two-sample Kolmogorov-Smirnov test for numeric fields and the score, a chi-square
goodness-of-fit test for categorical fields and the label, and the Jensen-Shannon distance
beside each as an effect size to chart. (Evidently, NannyML, alibi-detect and frouros were
tried first: none installs into this environment without downgrading numpy, scipy or
pandas, or, for Evidently, imports under pandas 3. See the README.)
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chisquare, ks_2samp

from apps.audit.redaction import MASK

# A category the reference never saw still gets a little expected mass, so one new value
# is drift (a tiny p-value) rather than a division by zero.
UNSEEN_SHARE = 1e-3


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: str
    statistic: float
    p_value: float
    js_distance: float
    samples: int


def _decile_edges(quantiles: np.ndarray) -> np.ndarray:
    """Bin edges at the reference's deciles, open at both ends."""
    edges = np.unique(np.quantile(quantiles, np.linspace(0, 1, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def numeric_drift(feature: str, reference: list[float], values: list[float]) -> FeatureDrift:
    """KS test of ``values`` against the reference quantiles; JS over the reference's
    decile bins."""
    current = np.asarray(values, dtype=float)
    quantiles = np.asarray(reference, dtype=float)
    result = ks_2samp(quantiles, current)
    edges = _decile_edges(quantiles)
    expected = np.histogram(quantiles, bins=edges)[0] + 1e-9
    observed = np.histogram(current, bins=edges)[0] + 1e-9
    return FeatureDrift(
        feature,
        "ks",
        float(result.statistic),
        float(result.pvalue),
        float(jensenshannon(expected, observed, base=2)),
        len(current),
    )


def categorical_drift(
    feature: str, frequencies: dict[str, float], values: list[Any]
) -> FeatureDrift:
    """Chi-square of the observed category counts against the reference shares."""
    categories = sorted(set(frequencies) | {str(value) for value in values})
    counts = {category: 0 for category in categories}
    for value in values:
        counts[str(value)] += 1
    shares = np.asarray([max(frequencies.get(c, 0.0), UNSEEN_SHARE) for c in categories])
    shares = shares / shares.sum()
    observed = np.asarray([counts[c] for c in categories], dtype=float)
    if len(categories) < 2:  # one category on both sides: nothing can have moved
        return FeatureDrift(feature, "chi_square", 0.0, 1.0, 0.0, len(values))
    result = chisquare(observed, shares * observed.sum())
    return FeatureDrift(
        feature,
        "chi_square",
        float(result.statistic),
        float(result.pvalue),
        float(jensenshannon(shares, observed / observed.sum(), base=2)),
        len(values),
    )


def _columns(profile: dict[str, Any], rows: list[dict[str, Any]]) -> Any:
    """(field label, its reference spec, the rows' values) for each profiled input field and
    the prediction (``score``, ``label``); masked (PII) and missing values are left out."""
    columns = [(name, spec, "inputs") for name, spec in profile.get("features", {}).items()]
    columns += [(name, spec, "prediction") for name, spec in profile.get("prediction", {}).items()]
    for name, spec, where in columns:
        if where == "inputs":
            values = [row["inputs"].get(name) for row in rows]
        else:
            values = [row.get(name) for row in rows]
        values = [value for value in values if value is not None and value != MASK]
        if spec["type"] == "numeric":
            values = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if values:
            yield (name if where == "inputs" else f"prediction.{name}"), spec, values


def window_drift(profile: dict[str, Any], rows: list[dict[str, Any]]) -> list[FeatureDrift]:
    """Drift of each profiled input field and of the prediction (``score``, ``label``) over
    ``rows`` (``{"inputs": {...}, "label", "score"}``). Masked (PII) values are left out."""
    found = []
    for label, spec, values in _columns(profile, rows):
        if spec["type"] == "numeric":
            found.append(numeric_drift(label, spec["quantiles"], values))
        else:
            found.append(categorical_drift(label, spec["frequencies"], values))
    return found


def _bin_label(low: float, high: float) -> str:
    if np.isinf(low):
        return f"< {high:,.4g}"
    if np.isinf(high):
        return f"≥ {low:,.4g}"
    return f"{low:,.4g} to {high:,.4g}"


def window_distributions(
    profile: dict[str, Any], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each profiled field's distribution over ``rows`` beside the training reference's:
    shares per reference decile bin (numeric fields, the score) or per category (others,
    the label). ``[{"feature", "labels", "reference", "live", "samples"}]``."""
    found = []
    for label, spec, values in _columns(profile, rows):
        if spec["type"] == "numeric":
            quantiles = np.asarray(spec["quantiles"], dtype=float)
            edges = _decile_edges(quantiles)
            reference = np.histogram(quantiles, bins=edges)[0] / len(quantiles)
            live = np.histogram(np.asarray(values, dtype=float), bins=edges)[0] / len(values)
            labels = [_bin_label(low, high) for low, high in pairwise(edges)]
        else:
            frequencies = spec["frequencies"]
            labels = sorted(set(frequencies) | {str(value) for value in values})
            total = sum(frequencies.values()) or 1.0
            reference = np.asarray([frequencies.get(c, 0.0) / total for c in labels])
            counts = {category: 0 for category in labels}
            for value in values:
                counts[str(value)] += 1
            live = np.asarray([counts[c] / len(values) for c in labels])
        found.append(
            {
                "feature": label,
                "labels": labels,
                "reference": [round(float(share), 4) for share in reference],
                "live": [round(float(share), 4) for share in live],
                "samples": len(values),
            }
        )
    return found
