//! A minimal JSON writer that produces orjson's bytes: compact separators, keys in the
//! order written, strings escaped and numbers formatted by serde_json (ryu for floats:
//! the same shortest repr orjson writes). Building `serde_json::Value` trees first cost
//! several times more than the writing itself.

use serde::Serialize;

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
    first: Vec<bool>, // per open container: nothing written in it yet
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Writer { buf: Vec::with_capacity(n), first: Vec::with_capacity(8) }
    }

    fn sep(&mut self) {
        if let Some(first) = self.first.last_mut() {
            if *first {
                *first = false;
            } else {
                self.buf.push(b',');
            }
        }
    }

    fn scalar<T: Serialize + ?Sized>(&mut self, v: &T) {
        serde_json::to_writer(&mut self.buf, v).expect("writing to a Vec cannot fail");
    }

    pub fn begin_object(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'{');
        self.first.push(true);
        self
    }

    pub fn begin_array(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'[');
        self.first.push(true);
        self
    }

    pub fn end_object(&mut self) -> &mut Self {
        self.first.pop();
        self.buf.push(b'}');
        self
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.first.pop();
        self.buf.push(b']');
        self
    }

    /// An object key; the value written next belongs to it.
    pub fn key(&mut self, k: &str) -> &mut Self {
        self.sep();
        self.scalar(k);
        self.buf.push(b':');
        if let Some(first) = self.first.last_mut() {
            *first = true; // the value that follows takes no comma
        }
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        self.scalar(s);
        self
    }

    pub fn int(&mut self, n: i64) -> &mut Self {
        self.sep();
        self.scalar(&n);
        self
    }

    pub fn float(&mut self, x: f64) -> &mut Self {
        self.sep();
        self.scalar(&x);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(b"null");
        self
    }

    pub fn strs<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.begin_array();
        for s in items {
            self.str(s);
        }
        self.end_array()
    }
}
