//! `ecomstream.profiles` (profile, change, codec) for the worker's hot path: the same
//! update rules, debounce and changelog bytes as the Python reference, so a profile
//! written by either is read by both and every output is identical.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde_json::{json, Value};

use crate::json::Writer;

use crate::items::pow;

pub const N_ACTIONS: usize = 8;
pub const ACTION_NAMES: [&str; N_ACTIONS] =
    ["view", "click", "add_to_cart", "remove_from_cart", "search", "wishlist", "purchase", "review"];
pub const PURCHASE: usize = 6;
pub const REVIEW: usize = 7;
pub const CLICKED: i64 = 2;
pub const CARTED: i64 = 4;
const VERSION: i64 = 1;
const RESCALE_HALF_LIVES: f64 = 40.0;
const FLOOR: f64 = 1e-9;

pub fn action_index(action: &str) -> Option<usize> {
    ACTION_NAMES.iter().position(|a| *a == action)
}

/// `ProfileConfig` (and the debounce) as the hot path reads it.
pub struct ProfileConfig {
    pub interest_half_life_ms: i64,
    pub max_categories: usize,
    pub recent_seen: usize,
    pub recent_bought: usize,
    pub session_items: usize,
    pub windows: Vec<(String, i64, i64)>, // (name, bucket_ms, buckets)
    pub price_alpha: f64,
    pub review_interest: f64,
    pub interest_weights: [f64; N_ACTIONS], // by action index; absent: 0
    pub strengths: [i64; N_ACTIONS],        // by action index; absent: 1
    pub debounce_ms: i64,
    pub cart_triggers: bool,
    pub signature_categories: usize,
    pub signature_items: usize,
    pub min_new_items: usize,
}

pub type Signature = (Vec<String>, Vec<String>);

#[derive(Clone, Default)]
pub struct Profile {
    pub user_id: String,
    pub ts: i64,
    pub lm: i64,
    pub cats: IndexMap<String, f64>,
    pub seen: IndexMap<String, (i64, i64)>, // item -> (ts, strength); ascending ts
    pub bought: IndexMap<String, i64>,
    pub sess: String,
    pub sess_items: Vec<String>,
    pub sess_ts: i64,
    pub win: Vec<BTreeMap<i64, [i64; N_ACTIONS]>>,
    pub n_orders: i64,
    pub n_lines: i64,
    pub spend: f64,
    pub first_buy: i64,
    pub last_buy: i64,
    pub last_order: String,
    pub price_mu: f64,
    pub price_var: f64,
    pub price_n: i64,
    pub rating_sum: i64,
    pub rating_n: i64,
    pub sent_sum: f64,
    pub sent_n: i64,
    pub emit_ts: i64,
    pub emit_sig: Option<Signature>,
    pub pending_buy: bool,
    pub pending_cart: bool,
    pub offsets: IndexMap<String, (i64, i64)>,
}

/// `(key, score)` highest first, ties by key (`decay.by_score`).
pub fn by_score(scores: &IndexMap<String, f64>) -> Vec<(&str, f64)> {
    let mut ranked: Vec<(&str, f64)> = scores.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    ranked.sort_by(|a, b| {
        b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(b.0))
    });
    ranked
}

fn needs_rescale(ts: i64, landmark: i64, half_life_ms: i64) -> bool {
    ((ts - landmark) as f64) > RESCALE_HALF_LIVES * half_life_ms as f64
}

impl Profile {
    pub fn new(user_id: &str, config: &ProfileConfig) -> Self {
        Profile {
            user_id: user_id.to_string(),
            win: vec![BTreeMap::new(); config.windows.len()],
            emit_ts: -1,
            ..Default::default()
        }
    }

    // -- reading --------------------------------------------------------------------
    pub fn top_categories(&self, k: usize) -> Vec<(&str, f64)> {
        let total: f64 = self.cats.values().fold(0.0, |a, b| a + b);
        if total <= 0.0 {
            return Vec::new();
        }
        by_score(&self.cats)
            .into_iter()
            .take(k)
            .filter(|(_, s)| *s > 0.0)
            .map(|(c, s)| (c, s / total))
            .collect()
    }

    /// Most recent first.
    pub fn recent_items(&self, n: usize) -> impl Iterator<Item = &str> {
        self.seen.keys().rev().take(n).map(|s| s.as_str())
    }

    /// `seed_entries(n, held)`: the `n` latest items, then older ones held at `held`+.
    pub fn seed_entries(&self, n: usize, held: Option<i64>) -> Vec<(&str, i64, i64)> {
        let mut entries: Vec<(&str, i64, i64)> =
            self.seen.iter().rev().take(n).map(|(i, e)| (i.as_str(), e.0, e.1)).collect();
        if let Some(held) = held {
            if entries.len() < self.seen.len() {
                let older = self.seen.iter().rev().skip(entries.len());
                let more: Vec<_> = older
                    .filter(|(_, e)| e.1 >= held)
                    .map(|(i, e)| (i.as_str(), e.0, e.1))
                    .collect();
                entries.extend(more);
            }
        }
        entries
    }

    pub fn bought_since(&self, since_ts: i64) -> impl Iterator<Item = &str> {
        self.bought.iter().filter(move |(_, ts)| **ts >= since_ts).map(|(i, _)| i.as_str())
    }

    pub fn window_counts(&self, index: usize, spec: &(String, i64, i64)) -> [i64; N_ACTIONS] {
        let (_, bucket_ms, buckets) = spec;
        let newest = self.ts.div_euclid(*bucket_ms);
        let oldest = newest - buckets + 1;
        let mut sums = [0i64; N_ACTIONS];
        for (_, counts) in self.win[index].range(oldest..=newest) {
            for (s, c) in sums.iter_mut().zip(counts) {
                *s += c;
            }
        }
        sums
    }

    // -- the parts ------------------------------------------------------------------
    fn add_interest(&mut self, category: &str, weight: f64, ts: i64, c: &ProfileConfig) {
        let h = c.interest_half_life_ms;
        if self.lm == 0 {
            self.lm = ts;
        } else if needs_rescale(ts, self.lm, h) {
            let factor = pow(2.0, (self.lm - ts) as f64 / h as f64);
            self.cats.retain(|_, v| {
                *v *= factor;
                *v >= FLOOR
            });
            self.lm = ts;
        }
        let value = weight * pow(2.0, (ts - self.lm) as f64 / h as f64);
        if let Some(old) = self.cats.get_mut(category) {
            *old += value;
        } else {
            self.cats.insert(category.to_string(), value);
            if self.cats.len() > c.max_categories {
                let dead: Vec<String> = by_score(&self.cats)
                    .into_iter()
                    .skip(c.max_categories)
                    .map(|(k, _)| k.to_string())
                    .collect();
                for k in dead {
                    self.cats.shift_remove(&k);
                }
            }
        }
    }

    fn count(&mut self, action: usize, ts: i64, c: &ProfileConfig) {
        for (buckets, (_, bucket_ms, n)) in self.win.iter_mut().zip(&c.windows) {
            let cap = (*n + 1) as usize;
            let bucket = ts.div_euclid(*bucket_ms);
            if !buckets.contains_key(&bucket) {
                if buckets.len() >= cap && bucket < *buckets.keys().next().unwrap() {
                    continue; // older than every bucket kept: it would be evicted at once
                }
                buckets.insert(bucket, [0; N_ACTIONS]);
                if buckets.len() > cap {
                    buckets.pop_first();
                }
            }
            buckets.get_mut(&bucket).unwrap()[action] += 1;
        }
    }

    fn touch_seen(&mut self, item: &str, ts: i64, mut strength: i64, removal: bool, c: &ProfileConfig) {
        let entry = self.seen.get(item).copied();
        if let Some((ets, estr)) = entry {
            if removal {
                strength = if ts >= ets && estr == CARTED { CLICKED } else { estr };
            } else if estr > strength {
                strength = estr;
            }
            if (estr >= CARTED) != (strength >= CARTED) {
                self.pending_cart = true; // it entered or left the cart
            }
            if ts < ets {
                self.seen.get_mut(item).unwrap().1 = strength; // late: keeps its newer place
                return;
            }
        } else if strength >= CARTED {
            self.pending_cart = true;
        }
        let newest = self.seen.last().map_or(ts, |(_, e)| e.0);
        if entry.is_some() {
            self.seen.shift_remove(item);
        }
        self.seen.insert(item.to_string(), (ts, strength));
        if ts < newest {
            self.seen.sort_by(|ka, a, kb, b| a.0.cmp(&b.0).then_with(|| ka.cmp(kb)));
        }
        while self.seen.len() > c.recent_seen {
            self.seen.shift_remove_index(0);
        }
    }

    fn touch_bought(&mut self, item: &str, ts: i64, c: &ProfileConfig) {
        if let Some(&old) = self.bought.get(item) {
            if ts <= old {
                return;
            }
            self.bought.shift_remove(item);
        }
        let newest = self.bought.last().map_or(ts, |(_, t)| *t);
        self.bought.insert(item.to_string(), ts);
        if ts < newest {
            self.bought.sort_by(|ka, a, kb, b| a.cmp(b).then_with(|| ka.cmp(kb)));
        }
        while self.bought.len() > c.recent_bought {
            self.bought.shift_remove_index(0);
        }
    }

    // -- update rules ---------------------------------------------------------------
    /// Items of the current session that `item` is newly seen together with (call first).
    pub fn session_peers(&self, session_id: &str, item: &str) -> Vec<String> {
        if session_id != self.sess || self.sess_items.iter().any(|i| i == item) {
            return Vec::new();
        }
        self.sess_items.clone()
    }

    pub fn apply_click(&mut self, session_id: &str, item: &str, category: &str, action: usize, ts: i64, c: &ProfileConfig) {
        self.count(action, ts, c);
        let weight = c.interest_weights[action];
        if weight > 0.0 {
            self.add_interest(category, weight, ts, c);
        }
        self.touch_seen(item, ts, c.strengths[action], ACTION_NAMES[action] == "remove_from_cart", c);
        if session_id == self.sess {
            if !self.sess_items.iter().any(|i| i == item) {
                self.sess_items.push(item.to_string());
                if self.sess_items.len() > c.session_items {
                    self.sess_items.remove(0);
                }
            }
        } else if ts >= self.sess_ts {
            self.sess = session_id.to_string();
            self.sess_items = vec![item.to_string()];
        }
        if ts > self.sess_ts {
            self.sess_ts = ts;
        }
        if ts > self.ts {
            self.ts = ts;
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn apply_purchase(&mut self, order_id: &str, item: &str, category: &str, price: f64, quantity: i64, ts: i64, c: &ProfileConfig) {
        self.count(PURCHASE, ts, c);
        self.add_interest(category, c.interest_weights[PURCHASE], ts, c);
        self.touch_bought(item, ts, c);
        self.n_lines += 1;
        if order_id != self.last_order {
            self.n_orders += 1;
            self.last_order = order_id.to_string();
        }
        self.spend += price * quantity as f64;
        if self.first_buy == 0 || ts < self.first_buy {
            self.first_buy = ts;
        }
        if ts > self.last_buy {
            self.last_buy = ts;
        }
        let x = std::hint::black_box(price.max(0.01)).ln();
        if self.price_n == 0 {
            self.price_mu = x;
            self.price_var = 0.0;
        } else {
            let alpha = c.price_alpha;
            let delta = x - self.price_mu;
            self.price_mu += alpha * delta;
            self.price_var = (1.0 - alpha) * (self.price_var + alpha * delta * delta);
        }
        self.price_n += 1;
        self.pending_buy = true;
        if ts > self.ts {
            self.ts = ts;
        }
    }

    pub fn apply_review(&mut self, category: &str, rating: i64, ts: i64, c: &ProfileConfig) {
        self.count(REVIEW, ts, c);
        self.rating_sum += rating;
        self.rating_n += 1;
        if rating >= 4 && c.review_interest > 0.0 {
            self.add_interest(category, c.review_interest, ts, c);
        }
        if ts > self.ts {
            self.ts = ts;
        }
    }

    pub fn apply_review_score(&mut self, p_positive: f64, ts: i64) {
        self.sent_sum += p_positive;
        self.sent_n += 1;
        if ts > self.ts {
            self.ts = ts;
        }
    }

    /// True when this offset was already applied; otherwise records it.
    pub fn is_duplicate(&mut self, topic: &str, partition: i64, offset: i64) -> bool {
        match self.offsets.get_mut(topic) {
            Some(last) if last.0 == partition => {
                if offset <= last.1 {
                    return true;
                }
                last.1 = offset;
            }
            Some(last) => *last = (partition, offset),
            None => {
                self.offsets.insert(topic.to_string(), (partition, offset));
            }
        }
        false
    }

    // -- debounce (`ecomstream.profiles.change`) ---------------------------------------
    pub fn signature(&self, c: &ProfileConfig) -> Signature {
        let cats = by_score(&self.cats).into_iter().take(c.signature_categories).map(|(k, _)| k.to_string()).collect();
        let items = self.recent_items(c.signature_items).map(str::to_string).collect();
        (cats, items)
    }

    pub fn decide(&self, trigger_ts: i64, purchased: bool, c: &ProfileConfig) -> Option<Signature> {
        let urgent = purchased || self.pending_buy || (self.pending_cart && c.cart_triggers);
        if !urgent && self.emit_ts >= 0 && trigger_ts - self.emit_ts < c.debounce_ms {
            return None;
        }
        let current = self.signature(c);
        if urgent || meaningful_change(self.emit_sig.as_ref(), &current, c) {
            return Some(current);
        }
        None
    }

    pub fn mark_updated(&mut self, trigger_ts: i64, current: Signature) {
        if trigger_ts > self.emit_ts {
            self.emit_ts = trigger_ts;
        }
        self.emit_sig = Some(current);
        self.pending_buy = false;
        self.pending_cart = false;
    }

    // -- the update's profile summary (`UserProfile.summary`) -------------------------
    pub fn write_summary(&self, w: &mut Writer, c: &ProfileConfig) {
        w.begin_object().key("top_categories").begin_array();
        for (k, s) in self.top_categories(3) {
            w.begin_array().str(k).float(round(s, 4)).end_array();
        }
        w.end_array();
        w.key("recent_items").strs(self.recent_items(5));
        w.key("recent_bought").strs(self.bought.keys().rev().take(5).map(|s| s.as_str()));
        w.key("rfm").begin_object().key("last_purchase_ts");
        if self.last_buy != 0 {
            w.int(self.last_buy);
        } else {
            w.null();
        }
        w.key("orders").int(self.n_orders).key("spend").float(round(self.spend, 2)).end_object();
        w.key("price_band");
        if self.price_n == 0 {
            w.null();
        } else {
            let sd = std::hint::black_box(self.price_var.max(0.0)).sqrt();
            let lo = std::hint::black_box(self.price_mu - sd).exp();
            let hi = std::hint::black_box(self.price_mu + sd).exp();
            w.begin_array().float(round(lo, 2)).float(round(hi, 2)).end_array();
        }
        for (key, sum, n) in [
            ("avg_rating", self.rating_sum as f64, self.rating_n),
            ("avg_sentiment", self.sent_sum, self.sent_n),
        ] {
            w.key(key);
            if n != 0 {
                w.float(round(sum / n as f64, 3));
            } else {
                w.null();
            }
        }
        w.key("activity").begin_object();
        for (i, spec) in c.windows.iter().enumerate() {
            w.key(&spec.0).begin_object();
            for (name, n) in ACTION_NAMES.iter().zip(self.window_counts(i, spec)) {
                if n != 0 {
                    w.key(name).int(n);
                }
            }
            w.end_object();
        }
        w.end_object().end_object();
    }

    // -- codec (`ecomstream.profiles.codec`, version 1) -------------------------------
    pub fn encode(&self, c: &ProfileConfig) -> Vec<u8> {
        let t = self.ts;
        let mut w = Writer::with_capacity(512);
        w.begin_object().key("v").int(VERSION).key("u").str(&self.user_id);
        w.key("t").int(t).key("l").int(self.lm);
        if !self.cats.is_empty() {
            w.key("c").begin_object();
            for (k, v) in &self.cats {
                w.key(k).float(*v);
            }
            w.end_object();
        }
        if !self.seen.is_empty() {
            w.key("s").begin_array();
            for (i, e) in &self.seen {
                w.begin_array().str(i).int(t - e.0).int(e.1).end_array();
            }
            w.end_array();
        }
        if !self.bought.is_empty() {
            w.key("b").begin_array();
            for (i, ts) in &self.bought {
                w.begin_array().str(i).int(t - ts).end_array();
            }
            w.end_array();
        }
        if !self.sess.is_empty() {
            w.key("ss").str(&self.sess);
            w.key("si").strs(self.sess_items.iter().map(|s| s.as_str()));
            w.key("st").int(self.sess_ts);
        }
        if self.win.iter().any(|b| !b.is_empty()) {
            w.key("w").begin_object();
            for ((name, _, _), buckets) in c.windows.iter().zip(&self.win) {
                if buckets.is_empty() {
                    continue;
                }
                w.key(name).begin_array();
                for (b, counts) in buckets {
                    let mut end = N_ACTIONS; // `codec._row`: no trailing zeros
                    while end > 0 && counts[end - 1] == 0 {
                        end -= 1;
                    }
                    w.begin_array().int(*b);
                    for n in &counts[..end] {
                        w.int(*n);
                    }
                    w.end_array();
                }
                w.end_array();
            }
            w.end_object();
        }
        if self.n_lines != 0 {
            w.key("o").begin_array().int(self.n_orders).int(self.n_lines).float(self.spend);
            w.int(self.first_buy).int(self.last_buy).str(&self.last_order).end_array();
        }
        if self.price_n != 0 {
            w.key("p").begin_array().float(self.price_mu).float(self.price_var).int(self.price_n).end_array();
        }
        if self.rating_n != 0 || self.sent_n != 0 {
            w.key("r").begin_array().int(self.rating_sum).int(self.rating_n);
            w.float(self.sent_sum).int(self.sent_n).end_array();
        }
        if self.emit_ts >= 0 || self.pending_buy || self.pending_cart {
            let pending = self.pending_buy as i64 | (self.pending_cart as i64) << 1;
            w.key("e").begin_array().int(self.emit_ts);
            match &self.emit_sig {
                Some((cats, items)) => {
                    w.strs(cats.iter().map(|s| s.as_str()));
                    w.strs(items.iter().map(|s| s.as_str()));
                }
                None => {
                    w.strs([]).strs([]);
                }
            }
            w.int(pending).end_array();
        }
        if !self.offsets.is_empty() {
            w.key("k").begin_object();
            for (k, (p, o)) in &self.offsets {
                w.key(k).begin_array().int(*p).int(*o).end_array();
            }
            w.end_object();
        }
        w.end_object();
        w.buf
    }

    pub fn decode(raw: &[u8], c: &ProfileConfig) -> Result<Profile, String> {
        let d: Value = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
        decode_value(&d, c).ok_or_else(|| match d.get("v") {
            Some(v) if v != &json!(VERSION) => format!("unknown profile version {v}"),
            _ => "malformed profile record".to_string(),
        })
    }
}

fn decode_value(d: &Value, c: &ProfileConfig) -> Option<Profile> {
    if d.get("v")?.as_i64()? != VERSION {
        return None;
    }
    let mut p = Profile::new(d.get("u")?.as_str()?, c);
    let t = d.get("t")?.as_i64()?;
    p.ts = t;
    p.lm = d.get("l")?.as_i64()?;
    if let Some(cats) = d.get("c").and_then(Value::as_object) {
        for (k, v) in cats {
            p.cats.insert(k.clone(), v.as_f64()?);
        }
    }
    if let Some(rows) = d.get("s").and_then(Value::as_array) {
        for r in rows {
            p.seen.insert(r.get(0)?.as_str()?.to_string(), (t - r.get(1)?.as_i64()?, r.get(2)?.as_i64()?));
        }
    }
    if let Some(rows) = d.get("b").and_then(Value::as_array) {
        for r in rows {
            p.bought.insert(r.get(0)?.as_str()?.to_string(), t - r.get(1)?.as_i64()?);
        }
    }
    if let Some(sess) = d.get("ss") {
        p.sess = sess.as_str()?.to_string();
        p.sess_items = d.get("si")?.as_array()?.iter().map(|i| i.as_str().map(str::to_string)).collect::<Option<_>>()?;
        p.sess_ts = d.get("st").map_or(Some(t), Value::as_i64)?;
    }
    if let Some(windows) = d.get("w").and_then(Value::as_object) {
        for (i, (name, _, _)) in c.windows.iter().enumerate() {
            if let Some(rows) = windows.get(name).and_then(Value::as_array) {
                for r in rows {
                    let r = r.as_array()?;
                    let mut counts = [0i64; N_ACTIONS];
                    for (slot, v) in counts.iter_mut().zip(r.iter().skip(1)) {
                        *slot = v.as_i64()?;
                    }
                    p.win[i].insert(r.first()?.as_i64()?, counts);
                }
            }
        }
    }
    if let Some(o) = d.get("o").and_then(Value::as_array) {
        p.n_orders = o.first()?.as_i64()?;
        p.n_lines = o.get(1)?.as_i64()?;
        p.spend = o.get(2)?.as_f64()?;
        p.first_buy = o.get(3)?.as_i64()?;
        p.last_buy = o.get(4)?.as_i64()?;
        p.last_order = o.get(5)?.as_str()?.to_string();
    }
    if let Some(x) = d.get("p").and_then(Value::as_array) {
        p.price_mu = x.first()?.as_f64()?;
        p.price_var = x.get(1)?.as_f64()?;
        p.price_n = x.get(2)?.as_i64()?;
    }
    if let Some(r) = d.get("r").and_then(Value::as_array) {
        p.rating_sum = r.first()?.as_i64()?;
        p.rating_n = r.get(1)?.as_i64()?;
        p.sent_sum = r.get(2)?.as_f64()?;
        p.sent_n = r.get(3)?.as_i64()?;
    }
    if let Some(e) = d.get("e").and_then(Value::as_array) {
        p.emit_ts = e.first()?.as_i64()?;
        let strings = |v: &Value| -> Option<Vec<String>> {
            v.as_array()?.iter().map(|s| s.as_str().map(str::to_string)).collect()
        };
        let sig = (strings(e.get(1)?)?, strings(e.get(2)?)?);
        p.emit_sig = if p.emit_ts >= 0 { Some(sig) } else { None };
        let pending = e.get(3)?.as_i64()?;
        p.pending_buy = pending & 1 != 0;
        p.pending_cart = pending & 2 != 0;
    }
    if let Some(k) = d.get("k").and_then(Value::as_object) {
        for (topic, v) in k {
            p.offsets.insert(topic.clone(), (v.get(0)?.as_i64()?, v.get(1)?.as_i64()?));
        }
    }
    Some(p)
}

/// `meaningful_change(before, after)` of `ecomstream.profiles.change`.
fn meaningful_change(before: Option<&Signature>, after: &Signature, c: &ProfileConfig) -> bool {
    let Some((cats_before, items_before)) = before else {
        return !after.0.is_empty() || !after.1.is_empty();
    };
    let (cats_after, items_after) = after;
    if cats_after.first() != cats_before.first() {
        return true;
    }
    fn set(v: &[String]) -> std::collections::HashSet<&String> {
        v.iter().collect()
    }
    if set(cats_after) != set(cats_before) {
        return true;
    }
    let new = items_after.iter().filter(|i| !items_before.contains(i)).count();
    new >= c.min_new_items.min(items_after.len().max(1))
}

/// Python's `round(x, digits)`: correctly rounded, ties to even (Rust formats exactly).
pub fn round(x: f64, digits: usize) -> f64 {
    format!("{x:.digits$}").parse().unwrap_or(x)
}
