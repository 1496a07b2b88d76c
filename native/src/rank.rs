//! `ecomstream.recommend.recommender.rank` over the replica: the same candidates, sums,
//! sentiment multipliers, diversification and reasons, computed in the same order.

use std::cmp::Ordering;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::items::{pow, Id, Index, Record};

const COVIS: u8 = 0;
const POPULAR: u8 = 1;
const RECENT: u8 = 2;
const SHOP: u8 = 3;

/// The fields of `RecommenderConfig` (and the item config's sentiment half-life) that
/// ranking reads; seeds and categories are chosen by the caller from the profile.
pub struct RankConfig {
    pub k: usize,
    pub neighbours_per_seed: usize,
    pub recent_half_life_ms: f64,
    pub carted: i64,
    pub per_category: usize,
    pub w_covis: f64,
    pub w_popular: f64,
    pub w_recent: f64,
    pub w_shop: f64,
    pub diversity: f64,
    pub max_per_category: Option<usize>,
    pub use_sentiment: bool,
    pub sentiment_pseudo_reviews: f64,
    pub sentiment_exponent: f64,
    pub sentiment_floor: f64,
    pub sentiment_ceiling: f64,
    pub incident_multiplier: f64,
    pub demote_below: f64,
    pub praise_above: f64,
    pub sentiment_half_life_ms: i64,
    pub recent_reasons: FxHashMap<i64, String>,
    // What the caller reads from the profile (see `ProfileView`).
    pub seeds: usize,
    pub held_seeds: Option<i64>,
    pub categories: usize,
    pub exclude_bought_ms: Option<i64>, // None: never exclude
    pub sentiment_spares: Option<i64>,
}

/// What ranking reads from the user's profile.
pub struct ProfileView {
    pub seeds: Vec<(Id, i64, i64)>, // (item, seen ts, strength), as `seed_entries` orders them
    pub categories: Vec<(Id, f64)>, // top categories with their share, strongest first
    pub excluded: FxHashSet<Id>,
    pub spared: FxHashSet<Id>,
}

impl ProfileView {
    /// The view of a native profile at `now` (what `rank` reads in Python).
    pub fn of(index: &mut Index, p: &crate::profile::Profile, now: i64, c: &RankConfig) -> Self {
        let names = &mut index.names;
        let seeds = p
            .seed_entries(c.seeds, c.held_seeds)
            .into_iter()
            .map(|(i, ts, s)| (names.intern(i), ts, s))
            .collect();
        let categories = if c.w_popular != 0.0 {
            p.top_categories(c.categories).into_iter().map(|(k, s)| (names.intern(k), s)).collect()
        } else {
            Vec::new()
        };
        let excluded = match c.exclude_bought_ms {
            Some(ms) => p.bought_since(now - ms).map(|i| names.intern(i)).collect(),
            None => FxHashSet::default(),
        };
        let spared = match c.sentiment_spares {
            Some(level) => {
                p.seen.iter().filter(|(_, e)| e.1 >= level).map(|(i, _)| names.intern(i)).collect()
            }
            None => FxHashSet::default(),
        };
        ProfileView { seeds, categories, excluded, spared }
    }
}

pub struct Ranked {
    pub item: Id,
    pub category: Id,
    pub score: f64, // unrounded
    pub reasons: Vec<String>,
}

/// `f"{x:.0%}"`: CPython multiplies by 100, then rounds half to even like Rust's `{:.0}`.
fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// Why an item's multiplier is what it is; formatted only for the listed items.
#[derive(Clone, Copy)]
enum Note {
    Demoted(f64), // share of negative review mass
    Praised(f64), // share of positive review mass
    Incident,
}

impl Note {
    /// The reason as Python words it; `warned`: a spared item whose multiplier was lifted.
    fn text(self, warned: bool) -> String {
        let (demotion, body) = match self {
            Note::Demoted(share) => {
                (true, format!("negative reviews ({} negative recently)", percent(share)))
            }
            Note::Incident => (true, "open quality incident".to_string()),
            Note::Praised(share) => {
                (false, format!("well reviewed ({} positive recently)", percent(share)))
            }
        };
        match (warned, demotion) {
            (true, _) => format!("warning: {body}"),
            (false, true) => format!("demoted: {body}"),
            (false, false) => body,
        }
    }
}

/// `(multiplier, note, warned)`; `warned`: a spared item whose multiplier was lifted to 1.
fn sentiment_multiplier(
    record: &Record,
    now: i64,
    prior: f64,
    c: &RankConfig,
    spared: bool,
) -> (f64, Option<Note>, bool) {
    let mut m = 1.0;
    let mut note = None;
    let (neg, pos) = record.sentiment_counts(now, c.sentiment_half_life_ms);
    let mass = neg + pos;
    if mass > 0.0 && prior > 0.0 {
        let a = c.sentiment_pseudo_reviews;
        let q = (pos + a * prior) / (mass + a);
        m = pow(q / prior, c.sentiment_exponent);
        m = m.max(c.sentiment_floor).min(c.sentiment_ceiling);
        if m < c.demote_below {
            note = Some(Note::Demoted(neg / mass));
        } else if m > c.praise_above {
            note = Some(Note::Praised(pos / mass));
        }
    }
    if record.incident {
        m *= c.incident_multiplier;
        note = Some(Note::Incident);
    }
    let mut warned = false;
    if spared && m < 1.0 {
        m = 1.0;
        warned = true;
    }
    (m, note, warned)
}

/// Python's `max(a, b)` / `min(a, b)` on floats keep the first argument on ties; so do
/// `f64::max` / `f64::min` for non-NaN values, which is all ranking sees.
struct Scored {
    neg: f64, // the negated score, as Python sorts it
    item: Id,
    category: Id,
    note: Option<Note>,
    warned: bool,
}

fn diversify(index: &Index, mut scored: Vec<Scored>, c: &RankConfig) -> Vec<Scored> {
    let names = &index.names;
    let k = c.k;
    let cap = c.max_per_category.unwrap_or(k);
    let depth = k.min(cap);
    let damping: Vec<f64> = (0..depth).map(|n| pow(c.diversity, n as f64)).collect();
    // Python sorts by (category name, score, item); grouping only needs each category's
    // items together and best first, so the cheaper category id gives the same picks.
    scored.sort_unstable_by(|a, b| {
        a.category
            .cmp(&b.category)
            .then_with(|| a.neg.partial_cmp(&b.neg).unwrap_or(Ordering::Equal))
            .then_with(|| names.name(a.item).cmp(names.name(b.item)))
    });
    let mut damped: Vec<Scored> = Vec::with_capacity(scored.len());
    let mut category: Option<Id> = None;
    let mut n = 0usize;
    for s in scored {
        if Some(s.category) != category {
            category = Some(s.category);
            n = 0;
        }
        if n < depth {
            damped.push(Scored { neg: s.neg * damping[n], ..s });
        }
        n += 1;
    }
    damped.sort_unstable_by(|a, b| {
        a.neg
            .partial_cmp(&b.neg)
            .unwrap_or(Ordering::Equal)
            .then_with(|| names.name(a.item).cmp(names.name(b.item)))
    });
    damped.truncate(k);
    damped
}

pub fn rank(index: &mut Index, profile: &ProfileView, now: i64, c: &RankConfig) -> Vec<Ranked> {
    // Insertion order does not matter (every list below is fully sorted); the order in
    // which an item's contributions are added does, and follows Python's loops.
    let mut cand: FxHashMap<Id, f64> = FxHashMap::default();
    let mut recent: FxHashMap<Id, (f64, i64)> = FxHashMap::default();
    let mut covisited: Vec<(Id, f64)> = Vec::new(); // (seed, scale)
    let mut categories: Vec<(Id, FxHashMap<Id, f64>)> = Vec::new();
    let mut shop: FxHashMap<Id, f64> = FxHashMap::default();

    let half_life = c.recent_half_life_ms;
    for &(item, seen_ts, strength) in &profile.seeds {
        let age = (now - seen_ts).max(0);
        let weight = (strength as f64 / c.carted as f64) * pow(2.0, (-age) as f64 / half_life);
        if c.w_recent != 0.0 {
            *cand.entry(item).or_insert(0.0) += c.w_recent * weight;
            recent.insert(item, (c.w_recent * weight, strength));
        }
        let record = match index.records.get(&item) {
            Some(r) if r.nb_total > 0.0 && c.w_covis != 0.0 => r,
            _ => continue,
        };
        let scale = c.w_covis * weight / record.nb_total;
        covisited.push((item, scale));
        for &(other, count) in record.top_neighbours(&index.names).iter().take(c.neighbours_per_seed) {
            *cand.entry(other).or_insert(0.0) += count * scale;
        }
    }
    if c.w_popular != 0.0 {
        for &(category, share) in &profile.categories {
            let top = index.top(category, c.per_category);
            if top.is_empty() || top[0].1 <= 0.0 {
                continue;
            }
            let scale = c.w_popular * share / top[0].1;
            let mut contributions = FxHashMap::default();
            for &(other, pop) in top {
                contributions.insert(other, pop * scale);
            }
            for &(other, pop) in top {
                *cand.entry(other).or_insert(0.0) += pop * scale;
            }
            categories.push((category, contributions));
        }
    }
    let excluded = &profile.excluded;
    if c.w_shop != 0.0 {
        let kept = cand.len() - excluded.iter().filter(|e| cand.contains_key(e)).count();
        if kept < c.k {
            let all = index.all;
            let top = index.top(all, c.k + excluded.len());
            if !top.is_empty() && top[0].1 > 0.0 {
                let scale = c.w_shop / top[0].1;
                for &(other, pop) in top {
                    *cand.entry(other).or_insert(0.0) += pop * scale;
                    shop.insert(other, pop * scale);
                }
            }
        }
    }

    let prior = if c.use_sentiment { index.sentiment_prior() } else { 0.0 };
    let mut scored: Vec<Scored> = Vec::with_capacity(cand.len());
    for (&item, &score) in &cand {
        if score <= 0.0 || excluded.contains(&item) {
            continue;
        }
        let Some(record) = index.records.get(&item) else {
            scored.push(Scored { neg: -score, item, category: index.empty, note: None, warned: false });
            continue;
        };
        let mut score = score;
        let (mut note, mut warned) = (None, false);
        if c.use_sentiment && (record.slm != 0 || record.incident) {
            let spared = profile.spared.contains(&item);
            let m;
            (m, note, warned) = sentiment_multiplier(record, now, prior, c, spared);
            score *= m;
        }
        scored.push(Scored { neg: -score, item, category: record.category, note, warned });
    }

    let names = &index.names;
    let mut ranked = Vec::with_capacity(c.k);
    for s in diversify(index, scored, c) {
        let item = s.item;
        let mut notes: Vec<(f64, u8, String)> = Vec::with_capacity(4);
        if let Some(&(value, strength)) = recent.get(&item) {
            let why = c.recent_reasons.get(&strength).map_or("you viewed this recently", |s| s);
            notes.push((value, RECENT, why.to_string()));
        }
        let (mut best, mut best_seed) = (0.0, None);
        for &(seed, scale) in &covisited {
            if let Some(&together) = index.records[&seed].nb.get(&item) {
                if together * scale > best {
                    best = together * scale;
                    best_seed = Some(seed);
                }
            }
        }
        if let Some(seed) = best_seed.filter(|_| best > 0.0) {
            notes.push((best, COVIS, format!("viewed together with {}", names.name(seed))));
        }
        for (category, contributions) in &categories {
            if let Some(&value) = contributions.get(&item) {
                notes.push((value, POPULAR, format!("popular in your category {}", names.name(*category))));
                break; // categories come strongest first
            }
        }
        if let Some(&value) = shop.get(&item) {
            notes.push((value, SHOP, "popular in the shop".to_string()));
        }
        // Stable, like Python's sort: equal (value, kind) keep their order.
        notes.sort_by(|a, b| {
            b.0.partial_cmp(&a.0).unwrap_or(Ordering::Equal).then_with(|| a.1.cmp(&b.1))
        });
        let mut reasons: Vec<String> = notes.into_iter().take(2).map(|n| n.2).collect();
        if let Some(note) = s.note {
            reasons.push(note.text(s.warned));
        }
        ranked.push(Ranked { item, category: s.category, score: -s.neg, reasons });
    }
    ranked
}
