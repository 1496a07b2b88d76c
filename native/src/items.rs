//! The item replica: `ecomstream.recommend.items.ItemIndex`'s reader path (`put`) and
//! reads (`top`, `sentiment_prior`), with the same arithmetic in the same order, so the
//! same changelog gives bit-identical values.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use rustc_hash::FxHashMap;
use serde::Deserialize;

pub type Id = u32;

const RESCALE_HALF_LIVES: f64 = 40.0;
const DEFAULT_FLOOR: f64 = 1e-9;
const VERSION: i64 = 1;
pub const ALL: &str = "*";

/// `base ** exp` through libm's `pow`, as CPython computes it. `black_box` stops the
/// compiler from rewriting `pow(2, x)` as `exp2(x)`, which may differ in the last bit.
#[inline]
pub fn pow(base: f64, exp: f64) -> f64 {
    std::hint::black_box(base).powf(exp)
}

/// `ts - landmark > 40 half-lives` (`ecomstream.profiles.decay.needs_rescale`).
#[inline]
fn needs_rescale(ts: i64, landmark: i64, half_life_ms: i64) -> bool {
    ((ts - landmark) as f64) > RESCALE_HALF_LIVES * half_life_ms as f64
}

/// Interned strings (item ids and categories): ids are cheap to hash and copy.
#[derive(Default)]
pub struct Names {
    ids: FxHashMap<Box<str>, Id>,
    names: Vec<Box<str>>,
}

impl Names {
    pub fn intern(&mut self, name: &str) -> Id {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as Id;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub fn get(&self, name: &str) -> Option<Id> {
        self.ids.get(name).copied()
    }

    #[inline]
    pub fn name(&self, id: Id) -> &str {
        &self.names[id as usize]
    }
}

/// `(key, score)` highest score first, ties by key name ascending (`decay.by_score`).
pub fn by_score(scores: &FxHashMap<Id, f64>, names: &Names) -> Vec<(Id, f64)> {
    let mut ranked: Vec<(Id, f64)> = scores.iter().map(|(&k, &v)| (k, v)).collect();
    ranked.sort_unstable_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(Ordering::Equal)
            .then_with(|| names.name(a.0).cmp(names.name(b.0)))
    });
    ranked
}

fn rescale(scores: &mut FxHashMap<Id, f64>, factor: f64) {
    scores.retain(|_, v| {
        *v *= factor;
        *v >= DEFAULT_FLOOR
    });
}

fn evict_smallest(scores: &mut FxHashMap<Id, f64>, keep: usize, names: &Names) {
    if scores.len() <= keep {
        return;
    }
    for (key, _) in by_score(scores, names).into_iter().skip(keep) {
        scores.remove(&key);
    }
}

pub struct Record {
    pub category: Id,
    pub lm: i64,
    pub pop: f64,
    pub nb: FxHashMap<Id, f64>,
    // nb by score, the most co-visited first: sorted when the item first seeds a ranking
    // (most records are replaced by the next commit's before that happens).
    nb_sorted: std::cell::OnceCell<Vec<(Id, f64)>>,
    pub nb_total: f64,
    pub price: Option<f64>,
    pub slm: i64,
    pub neg: f64,
    pub pos: f64,
    pub reviews: i64,
    pub incident: bool,
    pub alert_ts: i64,
}

impl Record {
    /// The co-visited items by count, most first (ties: item id).
    pub fn top_neighbours(&self, names: &Names) -> &[(Id, f64)] {
        self.nb_sorted.get_or_init(|| by_score(&self.nb, names))
    }

    /// Decayed (negative, positive) review mass at `now` (`ItemRecord.sentiment_counts`).
    pub fn sentiment_counts(&self, now: i64, half_life_ms: i64) -> (f64, f64) {
        if self.slm == 0 {
            return (0.0, 0.0);
        }
        let at = now.max(self.slm);
        let f = pow(2.0, (self.slm - at) as f64 / half_life_ms as f64);
        (self.neg * f, self.pos * f)
    }
}

/// The `items` table's changelog value (`ecomstream.recommend.items.encode_item`).
#[derive(Deserialize)]
struct Encoded<'a> {
    v: i64,
    #[serde(borrow)]
    i: Cow<'a, str>,
    #[serde(borrow)]
    c: Cow<'a, str>,
    l: i64,
    p: f64,
    #[serde(borrow, default)]
    n: Option<HashMap<Cow<'a, str>, f64>>,
    #[serde(default)]
    t: f64,
    #[serde(rename = "$", default)]
    price: Option<f64>,
    #[serde(default)]
    s: Option<(i64, f64, f64, i64)>,
    #[serde(default)]
    x: Option<(i64, i64)>,
}

struct CategoryTop {
    size: usize,
    lm: i64,
    scores: FxHashMap<Id, f64>,
    floor: f64,
    ranked: Option<Vec<(Id, f64)>>,
}

impl CategoryTop {
    fn new(size: usize) -> Self {
        CategoryTop { size, lm: 0, scores: FxHashMap::default(), floor: 0.0, ranked: None }
    }

    fn offer(&mut self, item: Id, stored: f64, landmark: i64, h: i64, names: &Names) {
        if self.lm == 0 {
            self.lm = landmark;
        } else if needs_rescale(landmark, self.lm, h) {
            let factor = pow(2.0, (self.lm - landmark) as f64 / h as f64);
            rescale(&mut self.scores, factor);
            self.floor *= factor;
            self.lm = landmark;
            self.ranked = None;
        }
        let value = stored * pow(2.0, (landmark - self.lm) as f64 / h as f64);
        if self.scores.contains_key(&item) || self.scores.len() < self.size || value > self.floor {
            self.scores.insert(item, value);
            self.ranked = None;
            if self.scores.len() >= 2 * self.size {
                evict_smallest(&mut self.scores, self.size, names);
                self.floor = self.scores.values().copied().fold(f64::INFINITY, f64::min);
            }
        }
    }

    fn top(&mut self, n: usize, names: &Names) -> &[(Id, f64)] {
        let ranked = self.ranked.get_or_insert_with(|| by_score(&self.scores, names));
        &ranked[..n.min(ranked.len())]
    }
}

pub struct Index {
    pub names: Names,
    pub records: FxHashMap<Id, Record>,
    tops: FxHashMap<Id, CategoryTop>,
    pub half_life_ms: i64,
    pub sentiment_half_life_ms: i64,
    category_top: usize,
    slm: i64,
    neg: f64,
    pos: f64,
    contrib: FxHashMap<Id, (f64, f64)>,
    pub all: Id,
    pub empty: Id,
}

impl Index {
    pub fn new(half_life_ms: i64, sentiment_half_life_ms: i64, category_top: usize) -> Self {
        let mut names = Names::default();
        let empty = names.intern("");
        let all = names.intern(ALL);
        Index {
            names,
            records: FxHashMap::default(),
            tops: FxHashMap::default(),
            half_life_ms,
            sentiment_half_life_ms,
            category_top,
            slm: 0,
            neg: 0.0,
            pos: 0.0,
            contrib: FxHashMap::default(),
            all,
            empty,
        }
    }

    /// Install a record from the owner's changelog, replacing any previous one.
    pub fn put_encoded(&mut self, raw: &[u8]) -> Result<Id, String> {
        let e: Encoded = serde_json::from_slice(raw).map_err(|err| err.to_string())?;
        if e.v != VERSION {
            return Err(format!("unknown item record version {}", e.v));
        }
        let item = self.names.intern(&e.i);
        let category = self.names.intern(&e.c);
        let mut nb = FxHashMap::default();
        if let Some(n) = &e.n {
            nb.reserve(n.len());
            for (other, &count) in n {
                nb.insert(self.names.intern(other), count);
            }
        }
        let (slm, neg, pos, reviews) = e.s.unwrap_or((0, 0.0, 0.0, 0));
        let (incident, alert_ts) = e.x.unwrap_or((0, 0));
        let record = Record {
            category,
            lm: e.l,
            pop: e.p,
            nb,
            nb_sorted: std::cell::OnceCell::new(),
            nb_total: if e.n.is_some() { e.t } else { 0.0 },
            price: e.price,
            slm,
            neg,
            pos,
            reviews,
            incident: incident != 0,
            alert_ts,
        };
        if record.pop != 0.0 {
            self.offer(item, &record);
        }
        self.refresh_sentiment(item, &record);
        self.records.insert(item, record);
        Ok(item)
    }

    fn offer(&mut self, item: Id, record: &Record) {
        let (h, size) = (self.half_life_ms, self.category_top);
        if record.category != self.empty {
            self.tops
                .entry(record.category)
                .or_insert_with(|| CategoryTop::new(size))
                .offer(item, record.pop, record.lm, h, &self.names);
        }
        self.tops
            .entry(self.all)
            .or_insert_with(|| CategoryTop::new(size))
            .offer(item, record.pop, record.lm, h, &self.names);
    }

    fn refresh_sentiment(&mut self, item: Id, record: &Record) {
        if record.slm == 0 {
            return;
        }
        let h = self.sentiment_half_life_ms;
        if self.slm == 0 {
            self.slm = record.slm;
        } else if needs_rescale(record.slm, self.slm, h) {
            let factor = pow(2.0, (self.slm - record.slm) as f64 / h as f64);
            self.neg *= factor;
            self.pos *= factor;
            for v in self.contrib.values_mut() {
                *v = (v.0 * factor, v.1 * factor);
            }
            self.slm = record.slm;
        }
        let f = pow(2.0, (record.slm - self.slm) as f64 / h as f64);
        let (neg, pos) = (record.neg * f, record.pos * f);
        let (old_neg, old_pos) = self.contrib.get(&item).copied().unwrap_or((0.0, 0.0));
        self.neg += neg - old_neg;
        self.pos += pos - old_pos;
        self.contrib.insert(item, (neg, pos));
    }

    /// The `n` most popular items of `category` (stored values, best first).
    pub fn top(&mut self, category: Id, n: usize) -> &[(Id, f64)] {
        match self.tops.get_mut(&category) {
            Some(top) => top.top(n, &self.names),
            None => &[],
        }
    }

    /// Shop-wide share of positive review mass; 0.5 without reviews.
    pub fn sentiment_prior(&self) -> f64 {
        let total = self.neg + self.pos;
        if total <= 0.0 {
            return 0.5;
        }
        self.pos / total
    }
}
