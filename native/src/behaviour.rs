//! `ecomstream.recommend.pipeline.process_events` over native profiles: the events of
//! one batch applied in order, item deltas accumulated per item, the debounce decided
//! once per touched user.

use indexmap::IndexMap;
use crate::json::Writer;

use crate::items::pow;
use crate::profile::{Profile, ProfileConfig, N_ACTIONS};

#[derive(Clone, Copy)]
pub enum Kind<'a> {
    Click { session_id: &'a str, item: &'a str, category: &'a str, action: usize },
    Purchase { order_id: &'a str, item: &'a str, category: &'a str, price: f64, quantity: i64 },
    Review { category: &'a str, rating: i64 },
}

pub struct Input<'a> {
    pub user: usize, // index of the user's profile in the batch
    pub event_id: &'a str,
    pub ts: i64,
    pub topic: &'a str,
    pub partition: i64,
    pub offset: i64, // < 0: no duplicate check
    pub kind: Kind<'a>,
}

/// `ItemConfig` as the pipeline reads it.
pub struct ItemParams {
    pub half_life_ms: i64,
    pub pop_weights: [f64; N_ACTIONS], // by action index; absent: 0
    pub covisit_decay: f64,
}

#[derive(Default)]
pub struct Delta {
    category: String,
    pop: f64,
    nb: IndexMap<String, f64>,
    nb_total: f64,
    price: Option<f64>,
}

impl Delta {
    /// `encode_delta`: the item-deltas topic value.
    pub fn encode(&self, item: &str, landmark: i64) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
        w.begin_object().key("i").str(item).key("l").int(landmark);
        if !self.category.is_empty() {
            w.key("c").str(&self.category);
        }
        if self.pop != 0.0 {
            w.key("p").float(self.pop);
        }
        if !self.nb.is_empty() {
            w.key("n").begin_object();
            for (k, v) in &self.nb {
                w.key(k).float(*v);
            }
            w.end_object().key("t").float(self.nb_total);
        }
        if let Some(price) = self.price {
            w.key("$").float(price);
        }
        w.end_object();
        w.buf
    }
}

fn delta_of<'m>(deltas: &'m mut IndexMap<String, Delta>, item: &str, category: &str) -> &'m mut Delta {
    if !deltas.contains_key(item) {
        deltas.insert(item.to_string(), Delta { category: category.to_string(), ..Default::default() });
    }
    let d = deltas.get_mut(item).unwrap();
    if !category.is_empty() && d.category.is_empty() {
        d.category = category.to_string();
    }
    d
}

pub struct Trigger {
    pub user: usize,
    pub event_id: String,
    pub ts: i64,
    pub purchase: bool,
}

pub struct Outcome {
    pub deltas: IndexMap<String, Delta>,
    pub triggers: Vec<Trigger>,
    pub applied: usize,
    pub duplicates: usize,
}

/// Apply `inputs` in order to `profiles` (indexed by `Input::user`).
pub fn process(
    profiles: &mut [&mut Profile],
    inputs: &[Input],
    landmark: i64,
    pc: &ProfileConfig,
    ic: &ItemParams,
    debounce: bool,
) -> Outcome {
    let h = ic.half_life_ms as f64;
    let mut out = Outcome { deltas: IndexMap::new(), triggers: Vec::new(), applied: 0, duplicates: 0 };
    let deltas = &mut out.deltas;
    let mut newest: IndexMap<usize, (&str, i64)> = IndexMap::new();
    let mut bought: IndexMap<usize, (&str, i64)> = IndexMap::new();
    for e in inputs {
        let p = &mut *profiles[e.user];
        if e.offset >= 0 && p.is_duplicate(e.topic, e.partition, e.offset) {
            out.duplicates += 1;
            continue;
        }
        out.applied += 1;
        let ts = e.ts;
        match e.kind {
            Kind::Click { session_id, item, category, action } => {
                let peers = p.session_peers(session_id, item);
                p.apply_click(session_id, item, category, action, ts, pc);
                let fw = pow(2.0, (ts - landmark) as f64 / h);
                let w = ic.pop_weights[action];
                let d = delta_of(deltas, item, category);
                if w != 0.0 {
                    d.pop += w * fw;
                }
                let mut pair = fw;
                for peer in peers.iter().rev() {
                    // nearest first
                    let d = deltas.get_mut(item).unwrap();
                    *d.nb.entry(peer.clone()).or_insert(0.0) += pair;
                    d.nb_total += pair;
                    let pd = delta_of(deltas, peer, "");
                    *pd.nb.entry(item.to_string()).or_insert(0.0) += pair;
                    pd.nb_total += pair;
                    pair *= ic.covisit_decay;
                }
            }
            Kind::Purchase { order_id, item, category, price, quantity } => {
                p.apply_purchase(order_id, item, category, price, quantity, ts, pc);
                let d = delta_of(deltas, item, category);
                d.pop += ic.pop_weights[crate::profile::PURCHASE] * pow(2.0, (ts - landmark) as f64 / h);
                d.price = Some(price);
                bought.insert(e.user, (e.event_id, ts));
            }
            Kind::Review { category, rating } => p.apply_review(category, rating, ts, pc),
        }
        match newest.get_mut(&e.user) {
            Some(last) if ts < last.1 => {}
            Some(last) => *last = (e.event_id, ts),
            None => {
                newest.insert(e.user, (e.event_id, ts));
            }
        }
    }
    for (&user, &last) in &newest {
        let p = &mut *profiles[user];
        let purchase = bought.get(&user);
        let (event_id, ts) = *purchase.unwrap_or(&last);
        if debounce {
            let Some(current) = p.decide(ts, purchase.is_some(), pc) else { continue };
            p.mark_updated(ts, current);
        } else {
            let current = p.signature(pc);
            p.mark_updated(ts, current);
        }
        out.triggers.push(Trigger { user, event_id: event_id.to_string(), ts, purchase: purchase.is_some() });
    }
    out
}
