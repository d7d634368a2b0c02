//! What the test peers (the root package's `src/bin/peer-*`) share: the program's `main`
//! (a subcommand succeeds with exit status 0 or fails with a message on stderr and exit
//! status 1), reading arguments, printing a line at once, and the tagged `u64` messages
//! `producer_id << 40 | sequence` of the queue peers.

use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;

/// What a subcommand returns; any error (a library error, a `String`, a `&str`) converts
/// into it with `?` or `.into()`.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// What a successful subcommand prints on stdout when it returns.
pub trait Report {
    /// Prints the result (nothing, for a subcommand that printed its own lines).
    fn report(self);
}

/// One result line.
impl Report for String {
    fn report(self) {
        println!("{self}");
    }
}

/// Nothing: the subcommand printed what it had to say itself.
impl Report for () {
    fn report(self) {}
}

/// Runs `run` on the command-line arguments (the program name left out): on success
/// prints its result ([`Report`]) and returns exit status 0; on failure prints
/// `PEER [args]: error` on stderr and returns exit status 1.
pub fn main<T: Report>(peer: &str, run: fn(&[&str]) -> Result<T>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(result) => {
            result.report();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{peer} {args:?}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `line` on stdout at once: the test reads it while the peer carries on.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Argument `i` (`what` names it in the error when it is missing).
pub fn arg<'a>(args: &[&'a str], i: usize, what: &str) -> Result<&'a str> {
    args.get(i)
        .copied()
        .ok_or_else(|| format!("missing {what} (argument {i})").into())
}

/// Argument `i`, parsed as a number.
pub fn num<T: FromStr>(args: &[&str], i: usize) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let text = arg(args, i, "number")?;
    text.parse()
        .map_err(|e| format!("argument {i} ({text:?}): {e}").into())
}

/// How many low bits of a tagged message hold the sequence number.
pub const SEQ_BITS: u32 = 40;

/// The message `seq` of producer `id`: `id << 40 | seq`.
pub fn tag(id: u64, seq: u64) -> u64 {
    id << SEQ_BITS | seq
}

/// Splits a tagged message into its producer and sequence number.
pub fn split(v: u64) -> (usize, u64) {
    ((v >> SEQ_BITS) as usize, v & ((1 << SEQ_BITS) - 1))
}

/// Checks that the tagged messages of each of `producers` producers arrive complete and
/// in order: every producer's sequence numbers 0, 1, 2... with none missing or repeated.
#[derive(Debug)]
pub struct InOrder {
    next: Vec<u64>,
}

impl InOrder {
    /// Expects sequence 0 of every producer `0..producers` first.
    pub fn new(producers: usize) -> Self {
        Self {
            next: vec![0; producers],
        }
    }

    /// Checks that `v` is the next message of its producer.
    pub fn check(&mut self, v: u64) -> Result<()> {
        let (id, seq) = split(v);
        let expected = self
            .next
            .get_mut(id)
            .ok_or_else(|| format!("unknown producer {id}"))?;
        if seq != *expected {
            return Err(format!("producer {id}: got {seq}, expected {expected}").into());
        }
        *expected += 1;
        Ok(())
    }

    /// The next sequence number expected of each producer.
    pub fn next(&self) -> &[u64] {
        &self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_or_name_what_is_wrong() {
        let args = ["produce", "q", "12", "x"];
        assert_eq!(arg(&args, 1, "queue name").unwrap(), "q");
        assert_eq!(num::<u64>(&args, 2).unwrap(), 12);
        let bad = num::<u64>(&args, 3).unwrap_err().to_string();
        assert!(bad.contains("argument 3") && bad.contains("\"x\""), "{bad}");
        let missing = arg(&args, 4, "cursor name").unwrap_err().to_string();
        assert!(missing.contains("missing cursor name"), "{missing}");
    }

    #[test]
    fn tags_round_trip() {
        assert_eq!(tag(3, 7), 3 << 40 | 7);
        assert_eq!(split(tag(3, 7)), (3, 7));
        assert_eq!(split(tag(0, (1 << 40) - 1)), (0, (1 << 40) - 1));
    }

    #[test]
    fn in_order_rejects_gaps_repeats_and_strangers() {
        let mut order = InOrder::new(2);
        order.check(tag(0, 0)).unwrap();
        order.check(tag(1, 0)).unwrap();
        order.check(tag(0, 1)).unwrap();
        assert_eq!(order.next(), [2, 1]);
        assert!(order.check(tag(0, 1)).is_err(), "a repeat passed");
        assert!(order.check(tag(1, 2)).is_err(), "a gap passed");
        assert!(
            order.check(tag(2, 0)).is_err(),
            "an unknown producer passed"
        );
        assert_eq!(order.next(), [2, 1], "a refused message counted");
    }
}
