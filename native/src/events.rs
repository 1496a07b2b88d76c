//! A fast path for the input schemas of `ecomstream.events`: parse and validate a
//! message the way pydantic (strict, extra fields allowed) would accept it. Anything
//! this path does not accept goes to the Python decoder, which either accepts it or
//! gives the precise rejection; so this path may refuse more than pydantic, never less.

use std::borrow::Cow;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

const MIN_TS_MS: i64 = 946_684_800_000;
const MAX_TS_MS: i64 = 4_102_444_800_000;
const MAX_ID_CHARS: usize = 128;
pub const ACTIONS: [&str; 6] = ["view", "click", "add_to_cart", "remove_from_cart", "search", "wishlist"];

/// A JSON string and nothing else (`null` included: `Option` would take it as absent).
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Str)
    }
}

fn zh<'a>() -> Str<'a> {
    Str(Cow::Borrowed("zh"))
}

#[derive(Deserialize)]
pub struct Click<'a> {
    #[serde(borrow)]
    pub event_id: Str<'a>,
    #[serde(borrow)]
    pub user_id: Str<'a>,
    pub ts: i64,
    #[serde(borrow)]
    pub session_id: Str<'a>,
    #[serde(borrow)]
    pub item_id: Str<'a>,
    #[serde(borrow)]
    pub category: Str<'a>,
    #[serde(borrow)]
    pub action: Str<'a>,
    #[serde(borrow, default, rename = "campaign")]
    _campaign: Option<Str<'a>>, // validated, not used
}

#[derive(Deserialize)]
pub struct Purchase<'a> {
    #[serde(borrow)]
    pub event_id: Str<'a>,
    #[serde(borrow)]
    pub user_id: Str<'a>,
    pub ts: i64,
    #[serde(borrow)]
    pub order_id: Str<'a>,
    #[serde(borrow)]
    pub item_id: Str<'a>,
    #[serde(borrow)]
    pub category: Str<'a>,
    pub price: f64,
    pub quantity: i64,
    #[serde(borrow, default, rename = "campaign")]
    _campaign: Option<Str<'a>>, // validated, not used
}

#[derive(Deserialize)]
pub struct Review<'a> {
    #[serde(borrow)]
    pub event_id: Str<'a>,
    #[serde(borrow)]
    pub user_id: Str<'a>,
    pub ts: i64,
    #[serde(borrow)]
    review_id: Str<'a>,
    #[serde(borrow)]
    pub item_id: Str<'a>,
    #[serde(borrow)]
    pub category: Str<'a>,
    pub rating: i64,
    #[serde(borrow)]
    text: Str<'a>,
    #[serde(borrow, default = "zh")]
    lang: Str<'a>,
}

pub enum Event<'a> {
    Click(Click<'a>),
    Purchase(Purchase<'a>),
    Review(Review<'a>),
}

fn id(s: &Str) -> bool {
    let n = s.0.chars().count();
    (1..=MAX_ID_CHARS).contains(&n)
}

fn ts(t: i64) -> bool {
    (MIN_TS_MS..MAX_TS_MS).contains(&t)
}

/// The event, if this path can accept the message as pydantic would; None otherwise.
pub fn parse<'a>(topic: &str, raw: &'a [u8], max_bytes: usize, max_review_chars: usize) -> Option<Event<'a>> {
    if raw.is_empty() || raw.len() > max_bytes || raw[0] != b'{' {
        return None;
    }
    match topic {
        "clicks" => {
            let e: Click = serde_json::from_slice(raw).ok()?;
            let ok = id(&e.event_id)
                && id(&e.user_id)
                && ts(e.ts)
                && id(&e.session_id)
                && id(&e.item_id)
                && id(&e.category)
                && ACTIONS.contains(&&*e.action.0);
            ok.then_some(Event::Click(e))
        }
        "purchases" => {
            let e: Purchase = serde_json::from_slice(raw).ok()?;
            let ok = id(&e.event_id)
                && id(&e.user_id)
                && ts(e.ts)
                && id(&e.order_id)
                && id(&e.item_id)
                && id(&e.category)
                && (0.0..=1_000_000.0).contains(&e.price)
                && (1..=10_000).contains(&e.quantity);
            ok.then_some(Event::Purchase(e))
        }
        "reviews" => {
            let e: Review = serde_json::from_slice(raw).ok()?;
            let lang = e.lang.0.chars().count();
            let ok = id(&e.event_id)
                && id(&e.user_id)
                && ts(e.ts)
                && id(&e.review_id)
                && id(&e.item_id)
                && id(&e.category)
                && (1..=5).contains(&e.rating)
                && (2..=16).contains(&lang)
                && e.text.0.chars().count() <= max_review_chars;
            ok.then_some(Event::Review(e))
        }
        _ => None,
    }
}
