//! The library API in one process: typed export and import check the local queue's
//! type before any traffic, an import creates its queue with the type, and a typed
//! round trip over loopback delivers every message.

mod support;

use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::{Mode, SendTimeoutError};
use fastipc_testkit::{ShmCleanup, unique_name, wait_until};
use fastipc_zenoh::{BridgeConfig, BridgeError, export, import};
use support::probe::Probe;

#[test]
fn typed_import_into_a_queue_of_another_type_is_refused_naming_both() {
    let dst = unique_name("blib");
    let _cleanup = ShmCleanup::new().segment(&dst);
    let _other = SlickQueue::<[u64; 8]>::create(&dst, 64).unwrap();
    let config = BridgeConfig::default().no_multicast();
    let err = import::<Probe>("fastipc/test/x", &dst, &config).unwrap_err();
    assert!(matches!(err, BridgeError::TypeMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`[u64; 8]`") && text.contains("`Probe`"),
        "{text}"
    );
}

#[test]
fn typed_export_of_a_queue_of_another_type_or_none_is_refused() {
    let src = unique_name("blib");
    let _cleanup = ShmCleanup::new().segment(&src);
    let config = BridgeConfig::default().no_multicast();
    let missing = export::<Probe>(&src, "fastipc/test/x", &config).unwrap_err();
    assert!(matches!(missing, BridgeError::Queue { .. }), "{missing:?}");
    let _other = SlickQueue::<[u64; 8]>::create(&src, 64).unwrap();
    let err = export::<Probe>(&src, "fastipc/test/x", &config).unwrap_err();
    assert!(matches!(err, BridgeError::TypeMismatch { .. }), "{err:?}");
    let bad_key = export::<[u64; 8]>(&src, "a/**b", &config).unwrap_err();
    assert!(
        matches!(bad_key, BridgeError::InvalidKey { .. }),
        "{bad_key:?}"
    );
}

#[test]
fn typed_round_trip_over_loopback_creates_the_queue_with_its_type() {
    let (src, dst) = (unique_name("blib"), unique_name("blib"));
    let _cleanup = ShmCleanup::new().segment(&src).segment(&dst);
    let key = format!("fastipc/test/{src}");
    let source = SlickQueue::<Probe>::create(&src, 4096).unwrap();
    // Importer listens on a free port (retrying), exporter connects.
    let mut attempt = 0u16;
    let (importer, port) = loop {
        let port = 20000
            + (std::process::id() as u16)
                .wrapping_mul(13)
                .wrapping_add(attempt * 611)
                % 40000;
        let config = BridgeConfig::default()
            .no_multicast()
            .listen(format!("tcp/127.0.0.1:{port}"))
            .capacity(4096);
        match import::<Probe>(&key, &dst, &config) {
            Ok(h) => break (h, port),
            Err(e) if attempt < 10 => eprintln!("port {port}: {e}"),
            Err(e) => panic!("{e}"),
        }
        attempt += 1;
    };
    let config = BridgeConfig::default()
        .no_multicast()
        .connect(format!("tcp/127.0.0.1:{port}"))
        .lossless(true);
    let exporter = export::<Probe>(&src, &key, &config).unwrap();
    assert!(wait_until(Duration::from_secs(60), || exporter.matched()));
    let local = SlickQueue::<Probe>::open(&dst).expect("created with Probe's type");
    let mut rx = local.consumer_from_oldest().expect("consumer");
    let tx = source.producer().expect("producer");
    for i in 0..1000 {
        tx.send(&Probe::new(i)).unwrap();
    }
    for i in 0..1000 {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(60)).unwrap(),
            Probe::new(i)
        );
    }
    let sent = exporter.stop().unwrap();
    assert_eq!(sent.messages, 1000);
    assert!(sent.batches < 1000, "batched: {sent:?}");
    let got = importer.stop().unwrap();
    assert_eq!((got.messages, got.lost()), (1000, 0));
}

/// Lossy: what the exporter reads while no importer subscribes is not published but
/// counted, and the count reaches the importer that comes later (`unmatched`, part of
/// `lost()`); what is sent after it came arrives.
#[test]
fn what_is_exported_while_no_importer_runs_is_counted_when_one_comes() {
    let (src, dst) = (unique_name("blib"), unique_name("blib"));
    let _cleanup = ShmCleanup::new().segment(&src).segment(&dst);
    let key = format!("fastipc/test/{src}");
    let source = SlickQueue::<Probe>::create(&src, 4096).unwrap();
    // The exporter listens on a free port (retrying); the importer connects later.
    let mut attempt = 0u16;
    let (exporter, port) = loop {
        let port = 20000
            + (std::process::id() as u16)
                .wrapping_mul(29)
                .wrapping_add(attempt * 733)
                % 40000;
        let config = BridgeConfig::default()
            .no_multicast()
            .listen(format!("tcp/127.0.0.1:{port}"));
        match export::<Probe>(&src, &key, &config) {
            Ok(h) => break (h, port),
            Err(e) if attempt < 10 => eprintln!("port {port}: {e}"),
            Err(e) => panic!("{e}"),
        }
        attempt += 1;
    };
    let tx = source.producer().expect("producer");
    for i in 0..100 {
        tx.send(&Probe::new(i)).unwrap();
    }
    let bound = Duration::from_secs(60);
    assert!(wait_until(bound, || exporter.stats().unmatched == 100));
    assert!(!exporter.matched());
    let config = BridgeConfig::default()
        .no_multicast()
        .connect(format!("tcp/127.0.0.1:{port}"))
        .capacity(4096);
    let importer = import::<Probe>(&key, &dst, &config).unwrap();
    assert!(wait_until(bound, || exporter.matched()));
    for i in 100..110 {
        tx.send(&Probe::new(i)).unwrap();
    }
    assert!(wait_until(bound, || {
        let s = importer.stats();
        s.messages == 10 && s.unmatched == 100
    }));
    let s = importer.stop().unwrap();
    assert_eq!(
        (s.lost(), s.unmatched, s.restart_gap),
        (100, 100, 0),
        "{s:?}"
    );
    let e = exporter.stop().unwrap();
    assert_eq!((e.messages, e.unmatched), (10, 100), "{e:?}");
    let local = SlickQueue::<Probe>::open(&dst).unwrap();
    let mut rx = local.consumer_from_oldest().unwrap();
    for i in 100..110 {
        assert_eq!(rx.try_recv().unwrap().seq, i);
    }
}

/// Lossless: with no importer, the exporter leaves the messages in its queue (its
/// registered position holds them, and the queue's producers wait for it); an importer
/// that comes later gets them all, none counted lost.
#[test]
fn a_lossless_export_waits_for_an_importer_and_loses_nothing() {
    let (src, dst) = (unique_name("blib"), unique_name("blib"));
    let _cleanup = ShmCleanup::new().segment(&src).segment(&dst);
    let key = format!("fastipc/test/{src}");
    let source = SlickQueue::<Probe>::create_with(&src, 64, Mode::Lossless).unwrap();
    let mut attempt = 0u16;
    let (exporter, port) = loop {
        let port = 20000
            + (std::process::id() as u16)
                .wrapping_mul(31)
                .wrapping_add(attempt * 977)
                % 40000;
        let config = BridgeConfig::default()
            .no_multicast()
            .lossless(true)
            .listen(format!("tcp/127.0.0.1:{port}"));
        match export::<Probe>(&src, &key, &config) {
            Ok(h) => break (h, port),
            Err(e) if attempt < 10 => eprintln!("port {port}: {e}"),
            Err(e) => panic!("{e}"),
        }
        attempt += 1;
    };
    let tx = source.producer().expect("producer");
    for i in 0..64 {
        tx.send(&Probe::new(i)).unwrap();
    }
    // The ring is full and the exporter, registered, takes nothing while unmatched.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        tx.send_timeout(&Probe::new(64), Duration::from_millis(100)),
        Err(SendTimeoutError::Timeout(Probe::new(64)))
    );
    assert_eq!(exporter.stats().messages + exporter.stats().unmatched, 0);
    let config = BridgeConfig::default()
        .no_multicast()
        .lossless(true)
        .connect(format!("tcp/127.0.0.1:{port}"))
        .capacity(256);
    let importer = import::<Probe>(&key, &dst, &config).unwrap();
    for i in 64..200 {
        tx.send_timeout(&Probe::new(i), Duration::from_secs(60))
            .unwrap();
    }
    let bound = Duration::from_secs(60);
    assert!(wait_until(bound, || importer.stats().messages == 200));
    let s = importer.stop().unwrap();
    assert_eq!(s.lost(), 0, "{s:?}");
    let local = SlickQueue::<Probe>::open(&dst).unwrap();
    let mut rx = local.consumer_from_oldest().unwrap();
    for i in 0..200 {
        assert_eq!(rx.try_recv().unwrap().seq, i);
    }
    drop(exporter);
}
