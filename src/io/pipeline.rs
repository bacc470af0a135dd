//! Chunks of whole lines spread over worker threads, results handed back in input order.
//!
//! One reader thread cuts the inputs (one after the other, as `cat` would) into chunks with
//! [`ChunkReader`]; an input that cannot be read (or not to its end) ends there, with the
//! error in its [`Step::End`], and the next one is read; `threads` workers turn each chunk into an output with `work`; the calling
//! thread receives the outputs strictly in input order through `sink`, which is where a tool
//! writes. The sink also hears when an input ends and, if `tick` is set, is called at least
//! that often while the input is quiet (live streams flush by wall clock).
//!
//! At most [`in_flight`]`(threads)` chunks are between the reader and the end of the sink
//! at any time: the reader waits for a credit before it reads the next chunk, and the sink
//! hands one back after each chunk. Memory is then that many chunks and outputs at most,
//! however long the input and however the threads are scheduled.
//!
//! If the sink fails (a closed pipe), the reader and workers stop at their next hand-off.
//! Once `stop` is set (by a signal handler), the reader reads no further chunk, so what was
//! read drains through to the sink and the run ends; a reader blocked on a quiet stream is
//! left there, and the sink learns from [`Step::Tick`] when everything read has reached it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError};

#[cfg(doc)]
use super::input::ChunkReader;
use super::input::Input;
use super::pool::Pool;
use crate::error::{Error, Result};

/// What the sink is told, in input order.
pub enum Step<O> {
    /// The output of one chunk of input `input`, which held `bytes` bytes.
    Chunk { input: usize, bytes: usize, out: O },
    /// Input `input` (named `name`) has ended; `overlong` lines were cut in it, the first
    /// of them line `first_overlong`. `error`: it could not be read (or not to its end),
    /// naming it; what was read of it came before.
    End {
        input: usize,
        name: String,
        overlong: u64,
        first_overlong: Option<u64>,
        error: Option<Error>,
    },
    /// Wall-clock tick while waiting for input. `idle`: every chunk read so far has been
    /// handed to the sink (nothing is in flight), as a tool stopping on a signal needs to
    /// know.
    Tick { idle: bool },
}

/// A run on live input: the sink is called with [`Step::Tick`] at least every `tick` while
/// the input is quiet; once `stop` is set, no further chunk is read.
#[derive(Clone, Copy)]
pub struct Live<'a> {
    pub tick: Duration,
    pub stop: Option<&'a AtomicBool>,
}

enum Msg<O> {
    Chunk(usize, usize, O),
    End(usize, String, u64, Option<u64>, Option<Error>),
}

/// Run the pipeline. `init` makes each worker's scratch state; `work` maps one chunk (whole
/// lines, handed over so an output may keep it without a copy) of input `i` to an output. Chunk buffers
/// come from `pool`; `work` may give a chunk back there once done with it. With
/// `threads <= 1` everything runs on the calling thread.
pub fn run<S, O, Init, Work, Sink>(
    inputs: Vec<Input>,
    threads: usize,
    live: Option<Live<'_>>,
    pool: &Pool,
    init: Init,
    work: Work,
    mut sink: Sink,
) -> Result<()>
where
    O: Send,
    Init: Fn() -> S + Sync,
    Work: Fn(&mut S, usize, Vec<u8>) -> O + Sync,
    Sink: FnMut(Step<O>) -> Result<()>,
{
    // Ticks (and so stops) need the sink on its own thread, so a live run has a worker even
    // alone.
    if threads <= 1 && live.is_none() {
        let mut state = init();
        for (i, input) in inputs.into_iter().enumerate() {
            let name = input.name.clone();
            let mut reader = input.chunks().with_pool(pool.clone());
            let error = loop {
                match reader.next_chunk() {
                    Ok(Some(chunk)) => {
                        let bytes = chunk.len();
                        let out = work(&mut state, i, chunk);
                        sink(Step::Chunk {
                            input: i,
                            bytes,
                            out,
                        })?;
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(Error::io(name.clone(), e)),
                }
            };
            sink(Step::End {
                input: i,
                name,
                overlong: reader.overlong,
                first_overlong: reader.first_overlong,
                error,
            })?;
        }
        return Ok(());
    }

    let threads = threads.max(1);
    let tick = live.map(|l| l.tick);
    let stop = live.and_then(|l| l.stop);
    let stopped = || stop.is_some_and(|s| s.load(Ordering::Relaxed));
    let limit = in_flight(threads);
    let (work_tx, work_rx) = bounded::<(u64, usize, Vec<u8>)>(limit);
    let (out_tx, out_rx) = bounded::<(u64, Msg<O>)>(limit);
    // Credits for chunks in flight: the reader takes one before each chunk, the sink gives
    // it back when done with that chunk's output.
    let (credit_tx, credit_rx) = bounded::<()>(limit);
    for _ in 0..limit {
        credit_tx.send(()).expect("room for every credit");
    }

    // Messages the reader has sent or is about to send (counted before the send, so that
    // the sink never sees fewer than it will get).
    let sent = AtomicU64::new(0);
    std::thread::scope(|scope| {
        // Reader.
        let reader_out = out_tx.clone();
        let sent = &sent;
        scope.spawn(move || {
            let mut seq = 0u64;
            let mut credit = false;
            for (i, input) in inputs.into_iter().enumerate() {
                let name = input.name.clone();
                let mut reader = input.chunks().with_pool(pool.clone());
                let error = loop {
                    if stopped() {
                        return;
                    }
                    // A credit taken for a read that found the end is kept for the next.
                    if !credit && credit_rx.recv().is_err() {
                        return;
                    }
                    credit = true;
                    match reader.next_chunk() {
                        Ok(Some(chunk)) => {
                            credit = false;
                            sent.fetch_add(1, Ordering::SeqCst);
                            if work_tx.send((seq, i, chunk)).is_err() {
                                return;
                            }
                            seq += 1;
                        }
                        Ok(None) => break None,
                        // That input ends here; the next is read.
                        Err(e) => break Some(Error::io(name.clone(), e)),
                    }
                };
                // The end marker travels on the output channel with its own sequence
                // number, so it is delivered after every chunk of this input.
                sent.fetch_add(1, Ordering::SeqCst);
                if reader_out
                    .send((
                        seq,
                        Msg::End(i, name, reader.overlong, reader.first_overlong, error),
                    ))
                    .is_err()
                {
                    return;
                }
                seq += 1;
            }
        });
        // Workers.
        for _ in 0..threads {
            let rx = work_rx.clone();
            let tx = out_tx.clone();
            let init = &init;
            let work = &work;
            scope.spawn(move || {
                let mut state = init();
                for (seq, input, chunk) in rx {
                    let bytes = chunk.len();
                    let out = work(&mut state, input, chunk);
                    if tx.send((seq, Msg::Chunk(input, bytes, out))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(work_rx);
        drop(out_tx);

        // Sink, on this thread, in order.
        let result = (|| {
            let mut pending: BTreeMap<u64, Msg<O>> = BTreeMap::new();
            let mut next = 0u64;
            let mut last_tick = Instant::now();
            loop {
                let received = match tick {
                    Some(every) => {
                        let wait = every.saturating_sub(last_tick.elapsed());
                        match out_rx.recv_timeout(wait) {
                            Ok(m) => Some(m),
                            Err(RecvTimeoutError::Timeout) => None,
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    None => match out_rx.recv() {
                        Ok(m) => Some(m),
                        Err(_) => break,
                    },
                };
                if let Some((seq, msg)) = received {
                    pending.insert(seq, msg);
                }
                while let Some(msg) = pending.remove(&next) {
                    next += 1;
                    match msg {
                        Msg::Chunk(input, bytes, out) => {
                            sink(Step::Chunk { input, bytes, out })?;
                            let _ = credit_tx.try_send(());
                        }
                        Msg::End(input, name, overlong, first_overlong, error) => {
                            sink(Step::End {
                                input,
                                name,
                                overlong,
                                first_overlong,
                                error,
                            })?
                        }
                    }
                }
                // After what was received is sunk, so that a tick sees it.
                if let Some(every) = tick {
                    if last_tick.elapsed() >= every {
                        last_tick = Instant::now();
                        let idle = sent.load(Ordering::SeqCst) == next;
                        sink(Step::Tick { idle })?;
                    }
                }
            }
            Ok(())
        })();
        drop(out_rx);
        drop(credit_tx);
        result
    })
}

/// How many chunks may be in flight with `threads` workers: one in each worker, one waiting
/// for each, and one being read.
pub fn in_flight(threads: usize) -> usize {
    2 * threads + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_arrive_in_input_order() {
        let data: Vec<u8> = (0..20000)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let inputs = vec![
            Input::from_bytes("a", data.clone()),
            Input::from_bytes("b", data.clone()),
        ];
        let mut seen = Vec::new();
        let mut ends = Vec::new();
        run(
            inputs,
            4,
            None,
            &Pool::new(4),
            || (),
            |_, _, chunk| chunk,
            |step| {
                match step {
                    Step::Chunk { out, .. } => seen.extend(out),
                    Step::End { name, .. } => ends.push(name),
                    Step::Tick { .. } => {}
                }
                Ok(())
            },
        )
        .unwrap();
        let mut want = data.clone();
        want.extend(&data);
        assert_eq!(seen, want);
        assert_eq!(ends, vec!["a", "b"]);
    }

    /// Once `stop` is set, the reader reads no further chunk, and every chunk it did read
    /// still reaches the sink before the run ends.
    #[test]
    fn a_stop_loses_nothing_read() {
        use std::sync::atomic::AtomicUsize;
        // About 40 chunks.
        let data = b"0123456789abcde\n".repeat(2_600_000);
        let stop = AtomicBool::new(false);
        let produced = AtomicUsize::new(0);
        let mut sunk = 0usize;
        run(
            vec![Input::from_bytes("a", data)],
            2,
            Some(Live {
                tick: Duration::from_millis(1),
                stop: Some(&stop),
            }),
            &Pool::new(8),
            || (),
            |_, _, chunk| {
                produced.fetch_add(1, Ordering::SeqCst);
                chunk.len()
            },
            |step| {
                if let Step::Chunk { .. } = step {
                    sunk += 1;
                    if sunk == 2 {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(sunk, produced.load(Ordering::SeqCst));
        // Two sunk, then at most the chunks in flight and the one being read.
        assert!(
            sunk <= 2 + in_flight(2) + 1,
            "{sunk} chunks: the reader went on after the stop"
        );
    }

    #[test]
    fn chunks_in_flight_are_bounded_across_many_inputs() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // More inputs than credits: a credit lost at the end of an input would hang here.
        let inputs: Vec<Input> = (0..3 * in_flight(2))
            .map(|i| Input::from_bytes(&format!("in{i}"), b"0123456789abcde\n".repeat(100_000)))
            .collect();
        let produced = AtomicUsize::new(0);
        let mut sunk = 0usize;
        let mut most = 0usize;
        let mut ends = 0;
        run(
            inputs,
            2,
            None,
            &Pool::new(4),
            || (),
            |_, _, chunk| {
                produced.fetch_add(1, Ordering::SeqCst);
                chunk.len()
            },
            |step| {
                if let Step::Chunk { .. } = step {
                    // Let the reader and workers run ahead as far as they can.
                    std::thread::sleep(Duration::from_millis(2));
                    most = most.max(produced.load(Ordering::SeqCst) - sunk);
                    sunk += 1;
                } else if let Step::End { .. } = step {
                    ends += 1;
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(ends, 3 * in_flight(2));
        assert_eq!(sunk, produced.load(Ordering::SeqCst));
        assert!(sunk > 3 * in_flight(2), "{sunk} chunks: inputs not cut");
        assert!(most <= in_flight(2), "{most} chunks in flight");
        assert!(most >= 2, "{most}: the workers never ran ahead");
    }
}
