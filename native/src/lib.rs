//! `ecomstream_native`: the worker's item replica and ranking in Rust.
//!
//! Why: ranking is about half of the worker's CPU per event in Python
//! (`python -m benchmarks.behaviour_cpu`). This module computes exactly what
//! `ecomstream.recommend.items.ItemIndex` (reader path) and
//! `ecomstream.recommend.recommender.rank` compute, with the same floating-point
//! operations in the same order; `ecomstream.recommend.native` wraps it and the tests
//! compare the two on simulated streams. The Python code stays the reference.

mod behaviour;
mod items;
mod json;
mod profile;
mod rank;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};
use pyo3::intern;
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
        incident_multiplier, demote_below, praise_above, sentiment_half_life_ms, recent_reasons,
        seeds, held_seeds, categories, exclude_bought_ms, sentiment_spares))]
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
        seeds: usize,
        held_seeds: Option<i64>,
        categories: usize,
        exclude_bought_ms: Option<i64>,
        sentiment_spares: Option<i64>,
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
                seeds,
                held_seeds,
                categories,
                exclude_bought_ms,
                sentiment_spares,
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
        let view = rank::ProfileView { seeds, categories, excluded, spared };
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

/// A user profile held in the profiles table (`ecomstream.profiles.UserProfile`'s twin;
/// the same changelog bytes).
#[pyclass(module = "ecomstream_native")]
struct Profile {
    inner: profile::Profile,
}

#[pymethods]
impl Profile {
    #[getter]
    fn user_id(&self) -> &str {
        &self.inner.user_id
    }

    #[getter]
    fn ts(&self) -> i64 {
        self.inner.ts
    }
}

/// The behaviour flow's hot path over native profiles (``ecomstream.recommend.native``).
#[pyclass(module = "ecomstream_native", frozen)]
struct BehaviourKernel {
    profile: profile::ProfileConfig,
    items: behaviour::ItemParams,
    debounce: bool,
    click: Py<PyType>,
    purchase: Py<PyType>,
}

type Processed<'py> = (Bound<'py, PyDict>, Vec<(Py<PyBytes>, Py<PyBytes>)>, Vec<(String, String, i64, bool)>, usize, usize);

fn actions(values: &FxHashMap<String, f64>, default: f64) -> [f64; profile::N_ACTIONS] {
    profile::ACTION_NAMES.map(|a| values.get(a).copied().unwrap_or(default))
}

impl BehaviourKernel {
    fn load<'py>(&self, py: Python<'py>, load: &Bound<'py, PyAny>, user_id: &str) -> PyResult<Bound<'py, Profile>> {
        let found = load.call1((user_id,))?;
        if found.is_none() {
            return Bound::new(py, Profile { inner: profile::Profile::new(user_id, &self.profile) });
        }
        if let Ok(p) = found.downcast::<Profile>() {
            return Ok(p.clone());
        }
        let raw: &[u8] = found.extract()?;
        let inner = profile::Profile::decode(raw, &self.profile).map_err(PyValueError::new_err)?;
        Bound::new(py, Profile { inner })
    }
}

#[pymethods]
impl BehaviourKernel {
    #[new]
    #[pyo3(signature = (*, interest_half_life_ms, max_categories, recent_seen, recent_bought,
        session_items, windows, price_alpha, review_interest, interest_weights, strengths,
        debounce_ms, cart_triggers, signature_categories, signature_items, min_new_items,
        item_half_life_ms, pop_weights, covisit_decay, debounce, click, purchase))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        interest_half_life_ms: i64,
        max_categories: usize,
        recent_seen: usize,
        recent_bought: usize,
        session_items: usize,
        windows: Vec<(String, i64, i64)>,
        price_alpha: f64,
        review_interest: f64,
        interest_weights: FxHashMap<String, f64>,
        strengths: FxHashMap<String, i64>,
        debounce_ms: i64,
        cart_triggers: bool,
        signature_categories: usize,
        signature_items: usize,
        min_new_items: usize,
        item_half_life_ms: i64,
        pop_weights: FxHashMap<String, f64>,
        covisit_decay: f64,
        debounce: bool,
        click: Py<PyType>,
        purchase: Py<PyType>,
    ) -> Self {
        let strengths = profile::ACTION_NAMES.map(|a| strengths.get(a).copied().unwrap_or(1));
        BehaviourKernel {
            profile: profile::ProfileConfig {
                interest_half_life_ms,
                max_categories,
                recent_seen,
                recent_bought,
                session_items,
                windows,
                price_alpha,
                review_interest,
                interest_weights: actions(&interest_weights, 0.0),
                strengths,
                debounce_ms,
                cart_triggers,
                signature_categories,
                signature_items,
                min_new_items,
            },
            items: behaviour::ItemParams {
                half_life_ms: item_half_life_ms,
                pop_weights: actions(&pop_weights, 0.0),
                covisit_decay,
            },
            debounce,
            click,
            purchase,
        }
    }

    /// Changelog bytes of a profile (`encode_profile`).
    fn encode<'py>(&self, py: Python<'py>, profile: PyRef<'_, Profile>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &profile.inner.encode(&self.profile))
    }

    /// A profile from changelog bytes (`decode_profile`).
    fn decode(&self, raw: &[u8]) -> PyResult<Profile> {
        let inner = profile::Profile::decode(raw, &self.profile).map_err(PyValueError::new_err)?;
        Ok(Profile { inner })
    }

    /// `process_events`: ``events`` are ``(event, topic, partition, offset)``; ``load(user_id)``
    /// gives the table's value (a Profile, its bytes, or None). Returns ``(profiles touched
    /// by user_id, [(item key, delta value)], [(user_id, event_id, ts, purchased)],
    /// applied, duplicates)``.
    fn process_events<'py>(
        &self,
        py: Python<'py>,
        load: &Bound<'py, PyAny>,
        events: &Bound<'py, PyList>,
        landmark: i64,
    ) -> PyResult<Processed<'py>> {
        let (click, purchase) = (self.click.bind(py), self.purchase.bind(py));
        let mut users: indexmap::IndexMap<String, usize> = indexmap::IndexMap::new();
        let mut cells: Vec<Bound<'py, Profile>> = Vec::new();
        let mut strings: Vec<pyo3::pybacked::PyBackedStr> = Vec::with_capacity(events.len() * 6);
        struct Raw {
            user: usize,
            event_id: usize, // index into strings
            ts: i64,
            topic: usize,
            partition: i64,
            offset: i64,
            kind: u8,
            s: [usize; 4],
            price: f64,
            n: i64,
        }
        let mut raws: Vec<Raw> = Vec::with_capacity(events.len());
        let mut text = |v: Bound<'py, PyAny>| -> PyResult<usize> {
            strings.push(v.extract()?);
            Ok(strings.len() - 1)
        };
        for item in events.iter() {
            let (event, topic, partition, offset): (Bound<PyAny>, Bound<PyAny>, i64, i64) = item.extract()?;
            let user_id: pyo3::pybacked::PyBackedStr = event.getattr(intern!(py, "user_id"))?.extract()?;
            let user = match users.get(&*user_id) {
                Some(&u) => u,
                None => {
                    cells.push(self.load(py, load, &user_id)?);
                    users.insert(user_id.to_string(), cells.len() - 1);
                    cells.len() - 1
                }
            };
            let ty = event.get_type();
            let mut raw = Raw {
                user,
                event_id: text(event.getattr(intern!(py, "event_id"))?)?,
                ts: event.getattr(intern!(py, "ts"))?.extract()?,
                topic: text(topic)?,
                partition,
                offset,
                kind: 2,
                s: [0; 4],
                price: 0.0,
                n: 0,
            };
            if ty.is(click) {
                raw.kind = 0;
                raw.s = [
                    text(event.getattr(intern!(py, "session_id"))?)?,
                    text(event.getattr(intern!(py, "item_id"))?)?,
                    text(event.getattr(intern!(py, "category"))?)?,
                    text(event.getattr(intern!(py, "action"))?)?,
                ];
            } else if ty.is(purchase) {
                raw.kind = 1;
                raw.s = [
                    text(event.getattr(intern!(py, "order_id"))?)?,
                    text(event.getattr(intern!(py, "item_id"))?)?,
                    text(event.getattr(intern!(py, "category"))?)?,
                    0,
                ];
                raw.price = event.getattr(intern!(py, "price"))?.extract()?;
                raw.n = event.getattr(intern!(py, "quantity"))?.extract()?;
            } else {
                raw.s = [text(event.getattr(intern!(py, "category"))?)?, 0, 0, 0];
                raw.n = event.getattr(intern!(py, "rating"))?.extract()?;
            }
            raws.push(raw);
        }
        let s = |i: usize| -> &str { &strings[i] };
        let mut inputs = Vec::with_capacity(raws.len());
        for r in &raws {
            let kind = match r.kind {
                0 => behaviour::Kind::Click {
                    session_id: s(r.s[0]),
                    item: s(r.s[1]),
                    category: s(r.s[2]),
                    action: profile::action_index(s(r.s[3]))
                        .ok_or_else(|| PyValueError::new_err(format!("unknown action {}", s(r.s[3]))))?,
                },
                1 => behaviour::Kind::Purchase {
                    order_id: s(r.s[0]),
                    item: s(r.s[1]),
                    category: s(r.s[2]),
                    price: r.price,
                    quantity: r.n,
                },
                _ => behaviour::Kind::Review { category: s(r.s[0]), rating: r.n },
            };
            inputs.push(behaviour::Input {
                user: r.user,
                event_id: s(r.event_id),
                ts: r.ts,
                topic: s(r.topic),
                partition: r.partition,
                offset: r.offset,
                kind,
            });
        }
        let mut borrowed: Vec<PyRefMut<'py, Profile>> = cells.iter().map(|c| c.borrow_mut()).collect();
        let mut refs: Vec<&mut profile::Profile> = borrowed.iter_mut().map(|p| &mut p.inner).collect();
        let outcome = behaviour::process(&mut refs, &inputs, landmark, &self.profile, &self.items, self.debounce);
        drop(refs);
        drop(borrowed);
        let profiles = PyDict::new(py);
        for (user_id, &i) in &users {
            profiles.set_item(user_id, &cells[i])?;
        }
        let deltas = outcome
            .deltas
            .iter()
            .map(|(item, d)| {
                (PyBytes::new(py, item.as_bytes()).unbind(), PyBytes::new(py, &d.encode(item, landmark)).unbind())
            })
            .collect();
        let user_ids: Vec<&String> = users.keys().collect();
        let triggers = outcome
            .triggers
            .into_iter()
            .map(|t| (user_ids[t.user].clone(), t.event_id, t.ts, t.purchase))
            .collect();
        Ok((profiles, deltas, triggers, outcome.applied, outcome.duplicates))
    }

    /// `process_review_scores`: ``scores`` are ``(user_id, p_positive, ts, topic, partition,
    /// offset)``. Returns ``(profiles touched by user_id, applied, duplicates)``.
    fn process_review_scores<'py>(
        &self,
        py: Python<'py>,
        load: &Bound<'py, PyAny>,
        scores: Vec<(String, f64, i64, String, i64, i64)>,
    ) -> PyResult<(Bound<'py, PyDict>, usize, usize)> {
        let profiles = PyDict::new(py);
        let (mut applied, mut duplicates) = (0, 0);
        for (user_id, p_positive, ts, topic, partition, offset) in scores {
            let cell = match profiles.get_item(&user_id)? {
                Some(found) => found.downcast_into::<Profile>()?,
                None => {
                    let cell = self.load(py, load, &user_id)?;
                    profiles.set_item(&user_id, &cell)?;
                    cell
                }
            };
            let p = &mut cell.borrow_mut().inner;
            if offset >= 0 && p.is_duplicate(&topic, partition, offset) {
                duplicates += 1;
                continue;
            }
            p.apply_review_score(p_positive, ts);
            applied += 1;
        }
        Ok((profiles, applied, duplicates))
    }

    /// The ``recommendation-updates`` value for ``profile`` (`recommend(...).to_json()`).
    #[pyo3(signature = (index, profile, config, update_id, trigger_event_id, ts))]
    fn recommend<'py>(
        &self,
        py: Python<'py>,
        index: &mut ItemIndex,
        profile: PyRef<'_, Profile>,
        config: &RankConfig,
        update_id: &str,
        trigger_event_id: &str,
        ts: i64,
    ) -> Bound<'py, PyBytes> {
        let p = &profile.inner;
        let c = &config.inner;
        let view = rank::ProfileView::of(&mut index.inner, p, ts, c);
        let ranked = rank::rank(&mut index.inner, &view, ts, c);
        let names = &index.inner.names;
        let mut w = json::Writer::with_capacity(2048);
        w.begin_object().key("update_id").str(update_id).key("user_id").str(&p.user_id);
        w.key("trigger_event_id").str(trigger_event_id).key("ts").int(ts);
        w.key("items").begin_array();
        for r in ranked {
            w.begin_object().key("item_id").str(names.name(r.item));
            w.key("category").str(names.name(r.category));
            w.key("score").float(profile::round(r.score, 6));
            w.key("reasons").strs(r.reasons.iter().map(|s| s.as_str()));
            w.end_object();
        }
        w.end_array().key("profile");
        p.write_summary(&mut w, &self.profile);
        w.end_object();
        PyBytes::new(py, &w.buf)
    }
}

#[pymodule]
fn ecomstream_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ItemIndex>()?;
    m.add_class::<RankConfig>()?;
    m.add_class::<Profile>()?;
    m.add_class::<BehaviourKernel>()?;
    Ok(())
}
