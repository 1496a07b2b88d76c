//! `ecomstream_native`: the worker's item replica and ranking in Rust.
//!
//! Why: ranking is about half of the worker's CPU per event in Python
//! (`python -m benchmarks.behaviour_cpu`). This module computes exactly what
//! `ecomstream.recommend.items.ItemIndex` (reader path) and
//! `ecomstream.recommend.recommender.rank` compute, with the same floating-point
//! operations in the same order; `ecomstream.recommend.native` wraps it and the tests
//! compare the two on simulated streams. The Python code stays the reference.

mod items;
mod rank;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustc_hash::{FxHashMap, FxHashSet};

/// Ranking parameters (`RecommenderConfig` and the sentiment half-life), built once.
#[pyclass(module = "ecomstream_native", frozen)]
struct RankConfig {
    inner: rank::RankConfig,
}

#[pymethods]
impl RankConfig {
    #[new]
    #[pyo3(signature = (*, k, neighbours_per_seed, recent_half_life_ms, carted, per_category,
        w_covis, w_popular, w_recent, w_shop, diversity, max_per_category, use_sentiment,
        sentiment_pseudo_reviews, sentiment_exponent, sentiment_floor, sentiment_ceiling,
        incident_multiplier, demote_below, praise_above, sentiment_half_life_ms, recent_reasons))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        k: usize,
        neighbours_per_seed: usize,
        recent_half_life_ms: f64,
        carted: i64,
        per_category: usize,
        w_covis: f64,
        w_popular: f64,
        w_recent: f64,
        w_shop: f64,
        diversity: f64,
        max_per_category: Option<usize>,
        use_sentiment: bool,
        sentiment_pseudo_reviews: f64,
        sentiment_exponent: f64,
        sentiment_floor: f64,
        sentiment_ceiling: f64,
        incident_multiplier: f64,
        demote_below: f64,
        praise_above: f64,
        sentiment_half_life_ms: i64,
        recent_reasons: FxHashMap<i64, String>,
    ) -> Self {
        RankConfig {
            inner: rank::RankConfig {
                k,
                neighbours_per_seed,
                recent_half_life_ms,
                carted,
                per_category,
                w_covis,
                w_popular,
                w_recent,
                w_shop,
                diversity,
                max_per_category,
                use_sentiment,
                sentiment_pseudo_reviews,
                sentiment_exponent,
                sentiment_floor,
                sentiment_ceiling,
                incident_multiplier,
                demote_below,
                praise_above,
                sentiment_half_life_ms,
                recent_reasons,
            },
        }
    }
}

/// The replica: records installed from the `items` changelog, ranked against.
#[pyclass(module = "ecomstream_native", unsendable)]
struct ItemIndex {
    inner: items::Index,
}

type RankedRow = (String, String, f64, Vec<String>);

#[pymethods]
impl ItemIndex {
    #[new]
    fn new(half_life_ms: i64, sentiment_half_life_ms: i64, category_top: usize) -> Self {
        ItemIndex { inner: items::Index::new(half_life_ms, sentiment_half_life_ms, category_top) }
    }

    fn __len__(&self) -> usize {
        self.inner.records.len()
    }

    /// Install one changelog value of the `items` table (replaces the item's record).
    fn put_encoded(&mut self, raw: &[u8]) -> PyResult<()> {
        self.inner.put_encoded(raw).map(|_| ()).map_err(PyValueError::new_err)
    }

    fn top(&mut self, category: &str, n: usize) -> Vec<(String, f64)> {
        let Some(id) = self.inner.names.get(category) else { return Vec::new() };
        let top: Vec<(u32, f64)> = self.inner.top(id, n).to_vec();
        top.into_iter().map(|(i, v)| (self.inner.names.name(i).to_string(), v)).collect()
    }

    fn sentiment_prior(&self) -> f64 {
        self.inner.sentiment_prior()
    }

    /// `(category, lm, pop, nb, nb_total, price, slm, neg, pos, reviews, incident, alert_ts)`
    /// of one item, or None.
    fn fields<'py>(&self, py: Python<'py>, item_id: &str) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let index = &self.inner;
        let Some(r) = index.names.get(item_id).and_then(|id| index.records.get(&id)) else {
            return Ok(None);
        };
        let nb = PyDict::new(py);
        for (&other, &count) in &r.nb {
            nb.set_item(index.names.name(other), count)?;
        }
        let values: Vec<PyObject> = vec![
            index.names.name(r.category).into_pyobject(py)?.into_any().unbind(),
            r.lm.into_pyobject(py)?.into_any().unbind(),
            r.pop.into_pyobject(py)?.into_any().unbind(),
            nb.into_any().unbind(),
            r.nb_total.into_pyobject(py)?.into_any().unbind(),
            r.price.into_pyobject(py)?.into_any().unbind(),
            r.slm.into_pyobject(py)?.into_any().unbind(),
            r.neg.into_pyobject(py)?.into_any().unbind(),
            r.pos.into_pyobject(py)?.into_any().unbind(),
            r.reviews.into_pyobject(py)?.into_any().unbind(),
            pyo3::types::PyBool::new(py, r.incident).to_owned().into_any().unbind(),
            r.alert_ts.into_pyobject(py)?.into_any().unbind(),
        ];
        Ok(Some(PyTuple::new(py, values)?))
    }

    /// The ranked list: ``[(item_id, category, score, reasons)]``, score unrounded.
    ///
    /// ``seeds``: ``(item_id, seen_ts, strength)`` as ``UserProfile.seed_entries`` gives
    /// them; ``categories``: ``top_categories``; ``excluded``: the items no list may show;
    /// ``spared``: the items sentiment must not sink.
    #[pyo3(signature = (config, now, seeds, categories, excluded, spared))]
    fn rank(
        &mut self,
        config: &RankConfig,
        now: i64,
        seeds: Vec<(String, i64, i64)>,
        categories: Vec<(String, f64)>,
        excluded: Vec<String>,
        spared: Vec<String>,
    ) -> Vec<RankedRow> {
        let index = &mut self.inner;
        let names = &mut index.names;
        let seeds: Vec<(u32, i64, i64)> =
            seeds.iter().map(|(i, ts, s)| (names.intern(i), *ts, *s)).collect();
        let categories: Vec<(u32, f64)> =
            categories.iter().map(|(c, share)| (names.intern(c), *share)).collect();
        let excluded: FxHashSet<u32> = excluded.iter().map(|i| names.intern(i)).collect();
        let spared: FxHashSet<u32> = spared.iter().map(|i| names.intern(i)).collect();
        let view = rank::ProfileView {
            seeds: &seeds,
            categories: &categories,
            excluded: &excluded,
            spared: &spared,
        };
        let ranked = rank::rank(index, &view, now, &config.inner);
        let names = &index.names;
        ranked
            .into_iter()
            .map(|r| {
                (names.name(r.item).to_string(), names.name(r.category).to_string(), r.score, r.reasons)
            })
            .collect()
    }
}

#[pymodule]
fn ecomstream_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ItemIndex>()?;
    m.add_class::<RankConfig>()?;
    Ok(())
}
