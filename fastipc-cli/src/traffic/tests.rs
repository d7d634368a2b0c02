//! Unit tests of `fastipc send`/`recv`: the pattern, the tally, and runs on real queues.

use super::send::check_send;
use super::*;

fn elem(seq: u64, len: usize) -> Vec<u8> {
    let mut e = vec![0; len];
    fill(seq, &mut e);
    e
}

#[test]
fn the_pattern_matches_its_definition() {
    for seq in [0u64, 1, 36, 255, 256, 1 << 40, u64::MAX] {
        let e = elem(seq, 300);
        assert_eq!(e[..8], seq.to_le_bytes());
        for (j, &b) in e.iter().enumerate().skip(8) {
            let expected = ((u128::from(seq) * 7 + j as u128) % 256) as u8;
            assert_eq!(b, expected, "seq {seq} byte {j}");
        }
        assert_eq!(verify(&e), Ok(seq));
    }
    assert_eq!(verify(&elem(9, 8)), Ok(9), "8 bytes: the number alone");
    assert_eq!(verify(&[1, 2, 3]), Err(Corruption::TooShort { len: 3 }));
    let mut bad = elem(5, 16);
    bad[11] ^= 1;
    assert_eq!(
        verify(&bad),
        Err(Corruption::Byte {
            seq: 5,
            offset: 11,
            found: bad[11],
            expected: bad[11] ^ 1
        })
    );
}

#[test]
fn element_sizes_below_eight_are_refused() {
    assert!(matches!(
        check_element_size(7),
        Err(CliError::ElementTooSmall(7))
    ));
    assert!(check_element_size(8).is_ok());
}

#[test]
fn an_exclusive_tally_counts_gaps_as_lost_and_stops_at_the_end() {
    let mut t = Tally::new(10, Mode::Exclusive);
    for seq in [0, 1, 2, 5, 6] {
        t.element(&elem(seq, 16));
    }
    assert_eq!((t.received, t.lost), (5, 2));
    t.lagged(2); // the gap already counted it
    assert_eq!(t.lost, 2);
    t.element(&elem(3, 16)); // goes back
    t.element(&elem(99, 16)); // out of range
    assert_eq!(t.out_of_order, 2);
    assert!(!t.is_done());
    let mut bad = elem(7, 16);
    bad[15] = bad[15].wrapping_add(1);
    t.element(&bad);
    assert_eq!(
        (t.corrupt, t.position()),
        (1, 8),
        "a damaged 7 still advances"
    );
    t.element(&elem(8, 16));
    t.element(&elem(9, 16));
    assert!(t.is_done() && !t.is_perfect());
    assert_eq!(
        t.first_problem.as_deref(),
        Some("2 elements lost from 3 on")
    );

    let mut ok = Tally::new(3, Mode::Exclusive);
    for seq in 0..3 {
        ok.element(&elem(seq, 8));
    }
    assert!(ok.is_done() && ok.is_perfect());
}

#[test]
fn a_shared_tally_accepts_gaps_but_not_going_back() {
    let mut t = Tally::new(4, Mode::Shared);
    for seq in [3, 8, 20] {
        t.element(&elem(seq, 8));
    }
    assert_eq!((t.received, t.lost, t.out_of_order), (3, 0, 0));
    t.element(&elem(4, 8));
    assert_eq!(t.out_of_order, 1);
    assert!(t.is_done() && !t.is_perfect());
    let mut lag = Tally::new(5, Mode::Shared);
    lag.lagged(3);
    lag.element(&elem(0, 8));
    assert_eq!(lag.lost, 3);
    assert!(!lag.is_done());
    lag.element(&elem(1, 8));
    assert!(lag.is_done() && !lag.is_perfect());
}

#[test]
fn summaries_are_one_line_and_verdicts_match() {
    let mut t = Tally::new(2, Mode::Exclusive);
    t.element(&elem(0, 8));
    t.element(&elem(1, 8));
    let s = RecvSummary {
        name: "q".into(),
        count: 2,
        elem_size: 8,
        tally: t,
        elapsed: Duration::from_millis(500),
        timed_out: None,
    };
    assert_eq!(
        s.to_string(),
        "received 2 of 2, lost 0, corrupt 0, out of order 0 in 500.0 ms: 4 msg/s, 0.0 MB/s"
    );
    assert!(s.verdict().is_ok());
    let late = RecvSummary {
        timed_out: Some(Duration::from_secs(1)),
        ..s.clone()
    };
    let err = late.verdict().unwrap_err().to_string();
    assert!(
        err.contains("nothing more arrived (2 of 2 received)"),
        "{err}"
    );
    let silent = RecvSummary {
        tally: Tally::new(2, Mode::Exclusive),
        ..late.clone()
    };
    let err = silent.verdict().unwrap_err().to_string();
    assert!(err.contains("nothing arrived (0 of 2 received)"), "{err}");
    assert_eq!(rate(3_000_000, Duration::from_secs(2)), "1.50 M msg/s");
    assert_eq!(rate(1, Duration::ZERO), "- msg/s");
}

#[test]
fn elements_claimed_beyond_the_count_are_counted_and_fail_the_run() {
    let mut t = Tally::new(1, Mode::Shared);
    t.element(&elem(0, 8));
    assert!(t.is_done() && t.is_perfect());
    for seq in [1, 2, 3] {
        t.element_beyond_count(&elem(seq, 8));
    }
    assert_eq!((t.received, t.beyond, t.beyond_seqs), (1, 3, Some((1, 3))));
    let s = RecvSummary {
        name: "q".into(),
        count: 1,
        elem_size: 8,
        tally: t,
        elapsed: Duration::from_millis(1),
        timed_out: None,
    };
    assert!(
        s.to_string().starts_with(
            "received 1 of 1, lost 0, corrupt 0, out of order 0, beyond --count 3 in "
        )
    );
    let err = s.verdict().unwrap_err();
    assert!(
        matches!(
            err,
            CliError::ClaimedBeyondCount {
                beyond: 3,
                count: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("(sequence numbers 1..=3)"),
        "{err}"
    );
}

#[test]
fn local_round_trip_through_a_ring() {
    // The send loop's reservation filling, checked against the tally, in memory.
    let ring = Ring::local(&RingSpec::new(64, 24)).unwrap();
    let mut scratch = vec![0u8; 3 * 24];
    for (i, e) in scratch.chunks_exact_mut(24).enumerate() {
        fill(i as u64, e);
    }
    ring.send_bytes(&scratch).unwrap();
    let (mut cursor, mut out) = (0, Vec::new());
    ring.read(&mut cursor, &mut out).unwrap();
    let mut t = Tally::new(3, Mode::Exclusive);
    out.chunks_exact(24).for_each(|e| t.element(e));
    assert!(t.is_perfect());
}

#[test]
fn bad_send_options_are_refused_before_touching_a_queue() {
    let base = SendOptions {
        name: "never-created-by-this-test".into(),
        count: 1,
        elem_size: 8,
        capacity: Some(16),
        batch: 1,
        rate: None,
        lossless: false,
    };
    let cases = [
        SendOptions {
            elem_size: 4,
            ..base.clone()
        },
        SendOptions {
            batch: 0,
            ..base.clone()
        },
        SendOptions {
            batch: 17,
            ..base.clone()
        },
        SendOptions {
            rate: Some(-1.0),
            ..base.clone()
        },
        SendOptions {
            rate: Some(f64::NAN),
            ..base.clone()
        },
        SendOptions {
            capacity: Some(12),
            ..base.clone()
        },
        // The last element would be due after ~1e30 s: no clock says that.
        SendOptions {
            count: 2,
            rate: Some(1e-30),
            ..base.clone()
        },
    ];
    for opts in cases {
        assert!(check_send(&opts).is_err(), "{opts:?}");
    }
    assert!(check_send(&base).is_ok());
    // Slow, but representable.
    let slow = SendOptions {
        count: 3,
        rate: Some(1e-6),
        ..base
    };
    assert!(check_send(&slow).is_ok());
    // One element is due at once, whatever the rate.
    assert!(
        check_send(&SendOptions {
            count: 1,
            rate: Some(1e-300),
            ..slow
        })
        .is_ok()
    );
}
