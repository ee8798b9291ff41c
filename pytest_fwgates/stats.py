"""The statistics a verdict rests on: how much a figure measured from a sample can prove.

- Shares of counted events (``80 of 80 probes good``): a one-sided Clopper-Pearson bound,
  exact for the binomial (never below its confidence, whatever the true share).
- Percentiles (``p95_ms``): a distribution-free bound from an order statistic of the exact
  histogram: the value at the rank ``r`` where ``P(Binomial(n, q) <= r - 1) >= confidence``
  bounds the true q-quantile from above (and symmetrically from below).
- Means of few samples (``mttr_s`` over incidents): a one-sided Student-t bound.
- Two distributions (a latency histogram against its baseline): the Mann-Whitney U test
  with ties, normal approximation with continuity correction, computed on the histograms;
  failure rates of two samples: Fisher's exact test; two means from their n, mean and
  standard deviation: Welch's t test.
- One number per run (``rps``, a deploy's ``duration_s``) against the stored runs: the
  Student-t prediction of one more run from their mean and spread.

The distributions come from scipy, imported only when a bound is computed. Each function
takes the confidence as a fraction (``0.95``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

#: values and how often each was seen (response times at 1 ms, latencies, durations)
Histogram = Mapping[int, int] | Mapping[float, int]

__all__ = [
    "Histogram",
    "MannWhitney",
    "binomial_lower",
    "binomial_upper",
    "fisher_greater",
    "histogram_rank",
    "histogram_stats",
    "mann_whitney",
    "mean_bounds",
    "mean_samples_needed",
    "pooled_stats",
    "prediction_p",
    "quantile_bounds",
    "quantile_ranks",
    "t_ppf",
    "trials_needed",
    "welch_p",
]


def _alpha(confidence: float) -> float:
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1): {confidence!r}")
    return 1.0 - confidence


def _counts(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"bad counts: {successes} of {trials}")


def binomial_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """The one-sided Clopper-Pearson lower bound of a share, as a fraction (0 for no trial)."""
    alpha = _alpha(confidence)
    _counts(successes, trials)
    if successes == 0:
        return 0.0
    if successes == trials:
        return float(alpha ** (1.0 / trials))  # exact: the solution of p^n = alpha
    failures = trials - successes
    if failures <= _EXACT_BOUND_MAX:
        # P(X >= s) = alpha is P(failures <= f) = alpha for the failure share q = 1 - p:
        # its solution from above, so that the bound on p is never too high
        return 1.0 - _solve_cdf(trials, failures, alpha)[1]
    if successes - 1 <= _EXACT_BOUND_MAX:
        # P(X <= s - 1) = 1 - alpha, from below
        return _solve_cdf(trials, successes - 1, 1.0 - alpha)[0]
    from scipy.stats import beta

    return float(beta.ppf(alpha, successes, trials - successes + 1))


#: up to this many events on the rarer side, a Clopper-Pearson bound is found here by
#: bisection over the exact binomial sum (no scipy import: the common case of a few failed
#: probes or requests among thousands); beyond it, scipy's beta quantile
_EXACT_BOUND_MAX = 200


def _solve_cdf(n: int, k: int, level: float) -> tuple[float, float]:
    """An interval ``(low, high)`` of width one float step (or 1e-15) around the ``p`` with
    ``P(Bin(n, p) <= k) = level`` (``0 <= k < n``; the sum falls as ``p`` grows), each end on
    its side of the solution."""
    log_choose = [
        math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) for j in range(k + 1)
    ]

    def cdf(p: float) -> float:
        log_p, log_r = math.log(p), math.log1p(-p)
        terms = [c + j * log_p + (n - j) * log_r for j, c in enumerate(log_choose)]
        top = max(terms)
        return math.exp(top) * math.fsum(math.exp(t - top) for t in terms)

    low, high = 0.0, 1.0
    while high - low > 1e-15:
        mid = (low + high) / 2
        if mid in (low, high):
            break
        if cdf(mid) > level:
            low = mid
        else:
            high = mid
    return low, high


def binomial_upper(successes: int, trials: int, confidence: float = 0.95) -> float:
    """The one-sided Clopper-Pearson upper bound of a share, as a fraction (1 for no trial)."""
    _counts(successes, trials)
    return 1.0 - binomial_lower(trials - successes, trials, confidence)


def trials_needed(
    successes: int, trials: int, target: float, confidence: float = 0.95, *, lower: bool = True
) -> int | None:
    """How many trials in all would show the share ``>= target`` (``lower``) or ``<= target``
    (upper bound) if every trial still to come succeeded (``lower``) or failed to count
    (upper: no further counted event). ``None`` when it would take more than 10**9."""
    _counts(successes, trials)
    # further trials add to the "good" side: successes for a lower bound, non-events for an
    # upper bound; the events that count against the target stay as they are
    against = trials - successes if lower else successes

    def shows(n: int) -> bool:
        if lower:
            return binomial_lower(n - against, n, confidence) >= target
        return binomial_upper(against, n, confidence) <= target

    if shows(max(trials, 1)):
        return max(trials, 1)
    return _first_shown(shows, max(trials, 1), max(trials, 1) * 2, 10**9)


def _first_shown(shows: Callable[[int], bool], low: int, high: int, most: int) -> int | None:
    """The smallest n for which ``shows`` holds, it holding for every n from some point on
    and not at ``low`` (unless ``low == high``, the first n asked): ``high`` doubled until it
    holds, then the gap to the last n that did not halved. None when a doubled ``high``
    passes ``most``."""
    while not shows(high):
        low, high = high, high * 2
        if high > most:
            return None
    while high - low > 1:
        mid = (low + high) // 2
        if shows(mid):
            high = mid
        else:
            low = mid
    return high


#: up to this many samples the binomial CDF of a percentile bound is summed exactly here
#: (no scipy import: a few milliseconds); beyond it, scipy's
_EXACT_CDF_MAX = 20000


def _binomial_cdf(n: int, q: float) -> list[float]:
    """``P(Bin(n, q) <= k)`` for k = 0..n, summed term by term in log space."""
    log_q, log_r = math.log(q), math.log1p(-q)
    total = 0.0
    cdf = []
    lg_n = math.lgamma(n + 1)
    for k in range(n + 1):
        total += math.exp(
            lg_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q + (n - k) * log_r
        )
        cdf.append(min(total, 1.0))
    return cdf


def quantile_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks of the order statistics that bound the ``q`` quantile from below and
    above with ``confidence`` each; ``None`` where ``n`` samples cannot bound it."""
    alpha = _alpha(confidence)
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1): {q!r}")
    if n <= 0:
        return None, None
    if n <= _EXACT_CDF_MAX:
        table = _binomial_cdf(n, q)

        def cdf(k: int) -> float:
            return 0.0 if k < 0 else 1.0 if k >= n else table[k]

        # upper: the smallest r with P(Bin(n, q) <= r - 1) >= confidence
        # (sums in floating point: a tie with the level within 1e-12 counts as reached)
        upper = next((r for r in range(1, n + 1) if cdf(r - 1) >= confidence - 1e-12), None)
        # lower: the largest s with P(Bin(n, q) >= s) >= confidence, i.e. cdf(s - 1) <= alpha
        lower = next((s for s in range(n, 0, -1) if cdf(s - 1) <= alpha + 1e-12), None)
        return lower, upper
    from scipy.stats import binom

    r = int(binom.ppf(confidence, n, q)) + 1
    while r > 1 and binom.cdf(r - 2, n, q) >= confidence:
        r -= 1
    while r <= n and binom.cdf(r - 1, n, q) < confidence:
        r += 1
    s = int(binom.ppf(alpha, n, q))
    while s >= 1 and binom.cdf(s - 1, n, q) > alpha:
        s -= 1
    while s + 1 <= n and binom.cdf(s, n, q) <= alpha:
        s += 1
    return (s if s >= 1 else None), (r if r <= n else None)


def histogram_rank(histogram: Histogram, rank: int) -> float:
    """The ``rank``-th smallest value (1-based) of a histogram ``{value: count}``."""
    seen = 0
    for value, count in sorted(histogram.items()):
        seen += count
        if seen >= rank:
            return float(value)
    raise ValueError(f"rank {rank} beyond the {seen} values of the histogram")


def quantile_bounds(
    histogram: Histogram, q: float, confidence: float = 0.95
) -> tuple[float, float]:
    """The ``q`` quantile's distribution-free bounds from a histogram: (lower, upper), each
    with ``confidence``; ``-inf``/``inf`` where the sample is too small to bound it."""
    n = sum(histogram.values())
    low_rank, high_rank = quantile_ranks(n, q, confidence)
    low = -math.inf if low_rank is None else histogram_rank(histogram, low_rank)
    high = math.inf if high_rank is None else histogram_rank(histogram, high_rank)
    return low, high


def mean_bounds(n: int, mean: float, stdev: float, confidence: float = 0.95) -> tuple[float, float]:
    """One-sided Student-t bounds of a mean of ``n`` samples (sample standard deviation
    ``stdev``): (lower, upper); unbounded for fewer than two samples."""
    _alpha(confidence)
    if n < 2 or not math.isfinite(stdev):
        return -math.inf, math.inf
    from scipy.stats import t

    margin = float(t.ppf(confidence, n - 1)) * stdev / math.sqrt(n)
    return mean - margin, mean + margin


def sample_stats(values: Sequence[float]) -> tuple[int, float, float]:
    """(n, mean, sample standard deviation) of ``values`` (the deviation NaN for n < 2)."""
    n = len(values)
    if n == 0:
        return 0, math.nan, math.nan
    mean = math.fsum(values) / n
    if n < 2:
        return n, mean, math.nan
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return n, mean, math.sqrt(var)


@dataclass(frozen=True)
class MannWhitney:
    """The U statistic of ``new`` against ``base`` and the one-sided p-value of "``new``
    tends to be larger" (``p_greater``) and "smaller" (``p_less``)."""

    u: float
    p_greater: float
    p_less: float
    n_new: int
    n_base: int


def mann_whitney(new: Histogram, base: Histogram) -> MannWhitney:
    """The Mann-Whitney U test of two histograms ``{value: count}``, ties by mid-ranks,
    normal approximation with tie and continuity correction (as scipy's asymptotic method)."""
    a_counts = {float(v): c for v, c in new.items() if c > 0}
    b_counts = {float(v): c for v, c in base.items() if c > 0}
    n1, n2 = sum(a_counts.values()), sum(b_counts.values())
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    rank_sum = 0.0
    ties = 0.0
    below = 0
    for value in sorted(set(a_counts) | set(b_counts)):
        a, b = a_counts.get(value, 0), b_counts.get(value, 0)
        t = a + b
        if t == 0:
            continue
        mid = below + (t + 1) / 2.0
        rank_sum += a * mid
        ties += t**3 - t
        below += t
    u = rank_sum - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    mu = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return MannWhitney(u, 1.0, 1.0, n1, n2)
    from scipy.stats import norm

    sd = math.sqrt(var)
    p_greater = float(norm.sf((u - mu - 0.5) / sd))
    p_less = float(norm.cdf((u - mu + 0.5) / sd))
    return MannWhitney(u, min(p_greater, 1.0), min(p_less, 1.0), n1, n2)


def fisher_greater(bad_new: int, n_new: int, bad_base: int, n_base: int) -> float:
    """One-sided p-value of Fisher's exact test that ``new`` fails more often than ``base``."""
    _counts(bad_new, n_new)
    _counts(bad_base, n_base)
    if n_new == 0 or n_base == 0:
        return 1.0
    from scipy.stats import fisher_exact

    table = [[bad_new, n_new - bad_new], [bad_base, n_base - bad_base]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def histogram_stats(histogram: Histogram) -> tuple[int, float, float]:
    """(n, mean, sample standard deviation) of a histogram ``{value: count}``."""
    items = [(float(v), int(c)) for v, c in histogram.items() if c > 0]
    n = sum(c for _, c in items)
    if n == 0:
        return 0, math.nan, math.nan
    mean = math.fsum(v * c for v, c in items) / n
    if n < 2:
        return n, mean, math.nan
    var = math.fsum(c * (v - mean) ** 2 for v, c in items) / (n - 1)
    return n, mean, math.sqrt(var)


def pooled_stats(parts: Sequence[tuple[int, float, float]]) -> tuple[int, float, float]:
    """(n, mean, sd) of the samples of several parts together, each given as (n, mean, sd)
    (an sd of NaN only for a part of one sample)."""
    parts = [(int(n), float(m), float(s)) for n, m, s in parts if n > 0]
    n = sum(p[0] for p in parts)
    if n == 0:
        return 0, math.nan, math.nan
    mean = math.fsum(k * m for k, m, _ in parts) / n
    if n < 2:
        return n, mean, math.nan
    within = math.fsum((k - 1) * (s if math.isfinite(s) else 0.0) ** 2 for k, _, s in parts)
    between = math.fsum(k * (m - mean) ** 2 for k, m, _ in parts)
    return n, mean, math.sqrt(max(within + between, 0.0) / (n - 1))


def welch_p(
    n_new: int, mean_new: float, sd_new: float, n_base: int, mean_base: float, sd_base: float
) -> tuple[float, float]:
    """Welch's t test of two means from their n, mean and sample standard deviation:
    the one-sided p-values of "``new`` is larger" and "smaller" (as scipy's
    ``ttest_ind(equal_var=False)``). (1, 1) when either side has fewer than two samples."""
    if n_new < 2 or n_base < 2 or not (math.isfinite(sd_new) and math.isfinite(sd_base)):
        return 1.0, 1.0
    a, b = sd_new**2 / n_new, sd_base**2 / n_base
    diff = mean_new - mean_base
    if a + b <= 0:
        if diff == 0:
            return 1.0, 1.0
        return (0.0, 1.0) if diff > 0 else (1.0, 0.0)
    t_stat = diff / math.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / (n_new - 1) + b**2 / (n_base - 1))
    from scipy.stats import t

    return float(t.sf(t_stat, df)), float(t.cdf(t_stat, df))


def prediction_p(value: float, runs: Sequence[float]) -> tuple[float, float]:
    """How surprising one more run's ``value`` is for the stored ``runs`` (one number each):
    the one-sided p-values of "larger" and "smaller" from the Student-t prediction
    ``(value - mean) / (s * sqrt(1 + 1/k))`` with ``k - 1`` degrees of freedom. Runs that
    all agree (s = 0) make any other value significant. Needs at least two runs."""
    k, mean, sd = sample_stats(list(runs))
    if k < 2:
        raise ValueError("a prediction needs at least two runs")
    diff = value - mean
    if sd <= 0 or not math.isfinite(sd):
        if diff == 0:
            return 1.0, 1.0
        return (0.0, 1.0) if diff > 0 else (1.0, 0.0)
    t_stat = diff / (sd * math.sqrt(1 + 1 / k))
    from scipy.stats import t

    return float(t.sf(t_stat, k - 1)), float(t.cdf(t_stat, k - 1))


def mean_samples_needed(
    mean: float, stdev: float, limit: float, confidence: float = 0.95, *, lower: bool = False
) -> int | None:
    """The smallest n whose one-sided t bound, with this mean and spread, lies on the good
    side of ``limit`` (upper bound below it, or lower bound above it); None when the mean
    itself does not, or it would take more than 10**6."""
    _alpha(confidence)
    gap = (mean - limit) if lower else (limit - mean)
    if gap <= 0 or not math.isfinite(stdev):
        return None
    if stdev == 0:
        return 2
    from scipy.stats import t

    def shows(n: int) -> bool:
        return float(t.ppf(confidence, n - 1)) * stdev / math.sqrt(n) < gap

    return _first_shown(shows, 2, 2, 10**6)


def t_ppf(confidence: float, df: float) -> float:
    """The one-sided Student-t quantile at ``confidence`` with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(confidence, df))
