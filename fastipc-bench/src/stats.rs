//! Medians and percentiles.
//!
//! Repetitions of one measurement are summarised by their median (the host sometimes runs
//! both vCPUs several times faster for a while, so a mean would follow the outliers);
//! per-message latencies by their p50 and p99.

/// The `p`-th percentile (0..=100) of `values`, nearest rank; `NaN` when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The median of `values`; `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The latency percentiles of one run, in nanoseconds (one-way).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Median one-way latency.
    pub p50: f64,
    /// 99th percentile one-way latency.
    pub p99: f64,
}

impl Latency {
    /// Summarises samples already in nanoseconds.
    pub fn of(samples_ns: &[f64]) -> Latency {
        Latency {
            p50: percentile(samples_ns, 50.0),
            p99: percentile(samples_ns, 99.0),
        }
    }

    /// Summarises round-trip samples in clock ticks as one-way latencies (half a round
    /// trip).
    pub fn of_round_trips(ticks: &[u64]) -> Latency {
        let ns: Vec<f64> = ticks
            .iter()
            .map(|&t| crate::clock::ticks_to_ns(t) / 2.0)
            .collect();
        Latency::of(&ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert!(median(&[]).is_nan());
    }
}
