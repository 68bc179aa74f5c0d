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


def numeric_drift(feature: str, reference: list[float], values: list[float]) -> FeatureDrift:
    """KS test of ``values`` against the reference quantiles; JS over the reference's
    decile bins."""
    current = np.asarray(values, dtype=float)
    quantiles = np.asarray(reference, dtype=float)
    result = ks_2samp(quantiles, current)
    edges = np.unique(np.quantile(quantiles, np.linspace(0, 1, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
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


def window_drift(profile: dict[str, Any], rows: list[dict[str, Any]]) -> list[FeatureDrift]:
    """Drift of each profiled input field and of the prediction (``score``, ``label``) over
    ``rows`` (``{"inputs": {...}, "label", "score"}``). Masked (PII) values are left out."""
    found = []
    columns = [(name, spec, "inputs") for name, spec in profile.get("features", {}).items()]
    columns += [(name, spec, "prediction") for name, spec in profile.get("prediction", {}).items()]
    for name, spec, where in columns:
        if where == "inputs":
            values = [row["inputs"].get(name) for row in rows]
        else:
            values = [row.get(name) for row in rows]
        values = [value for value in values if value is not None and value != MASK]
        if not values:
            continue
        label = name if where == "inputs" else f"prediction.{name}"
        if spec["type"] == "numeric":
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if numbers:
                found.append(numeric_drift(label, spec["quantiles"], numbers))
        else:
            found.append(categorical_drift(label, spec["frequencies"], values))
    return found
