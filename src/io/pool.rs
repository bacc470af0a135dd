//! Spare byte buffers handed back for reuse.
//!
//! Chunks and their outputs are a megabyte or more each and live on different threads; freed
//! and allocated afresh, each costs the kernel a round of page faults and zeroing. A pool
//! keeps a few for the next chunk instead.

use crossbeam_channel::{bounded, Receiver, Sender};

/// A bounded set of spare buffers, shared by cloning.
#[derive(Clone)]
pub struct Pool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

impl Pool {
    /// A pool keeping at most `spares` buffers (the rest of those given back are freed).
    pub fn new(spares: usize) -> Pool {
        let (tx, rx) = bounded(spares.max(1));
        Pool { tx, rx }
    }

    /// An empty buffer with room for at least `capacity` bytes: a spare if there is one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        match self.rx.try_recv() {
            Ok(mut buf) => {
                buf.reserve(capacity);
                buf
            }
            Err(_) => Vec::with_capacity(capacity),
        }
    }

    /// Hand a buffer back; its contents are dropped.
    pub fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        let _ = self.tx.try_send(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_keep_their_room() {
        let pool = Pool::new(1);
        let mut a = pool.take(10);
        a.extend_from_slice(b"hello");
        let room = a.capacity();
        pool.give(a);
        pool.give(Vec::with_capacity(3)); // over the limit: freed
        let b = pool.take(4);
        assert!(b.is_empty());
        assert_eq!(b.capacity(), room);
        assert!(pool.take(4).capacity() >= 4);
    }
}
