//! The pull-stream core, driven from Rust. The BEAM side of the same behaviour is
//! test/cloud_streams/pull_stream_test.exs.

use cloud_streams_core::chunk::Coalescer;
use cloud_streams_core::pull::{self, Bound, Event, PullStream, Pulled, Waiter};
use cloud_streams_core::synthetic::{pattern_byte, Synthetic};
use cloud_streams_core::{runtime, Error, ErrorKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime::get().block_on(future)
}

async fn drain(stream: &PullStream<Vec<u8>>) -> Result<Vec<Vec<u8>>, Error> {
    let mut items = Vec::new();
    loop {
        match stream.next().await {
            Event::Item(item) => items.push(item),
            Event::Done => return Ok(items),
            Event::Error(e) => return Err(e),
        }
    }
}

fn synthetic(chunks: u64, chunk_size: usize) -> Synthetic {
    Synthetic {
        chunks,
        chunk_size,
        ..Default::default()
    }
}

#[test]
fn delivers_every_item_in_order() {
    let source = synthetic(50, 1000);
    let stream = pull::spawn(Bound::Bytes(4000), |sink| source.run(sink));
    let items = block_on(drain(&stream)).unwrap();
    assert_eq!(items.len(), 50);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item, &vec![pattern_byte(i as u64); 1000]);
    }
}

#[test]
fn the_producer_stops_at_the_bound() {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let stream = pull::spawn(
        Bound::Items(4),
        move |sink: pull::Sink<Vec<u8>>| async move {
            loop {
                sink.send(vec![0u8; 10]).await?;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
    std::thread::sleep(Duration::from_millis(100));
    // Four items fill the buffer; the fifth send waits for room.
    assert_eq!(produced.load(Ordering::SeqCst), 4);
    block_on(async {
        assert!(matches!(stream.next().await, Event::Item(_)));
    });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(produced.load(Ordering::SeqCst), 5);
}

#[test]
fn closing_drops_the_producer() {
    struct OnDrop(mpsc::Sender<()>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let stream = pull::spawn(
        Bound::Items(1),
        move |sink: pull::Sink<Vec<u8>>| async move {
            let _guard = OnDrop(dropped_tx);
            loop {
                sink.send(vec![1u8]).await?;
            }
        },
    );
    std::thread::sleep(Duration::from_millis(20));
    drop(stream);
    dropped_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the producer future was dropped");
}

#[test]
fn a_failure_ends_the_stream_after_the_items_before_it() {
    let source = Synthetic {
        fail_after: Some(3),
        ..synthetic(10, 8)
    };
    let stream: PullStream<Vec<u8>> = pull::spawn(Bound::Items(100), |sink| source.run(sink));
    std::thread::sleep(Duration::from_millis(20));
    let mut items = 0;
    let error = block_on(async {
        loop {
            match stream.next().await {
                Event::Item(_) => items += 1,
                Event::Done => panic!("expected an error"),
                Event::Error(e) => return e,
            }
        }
    });
    assert_eq!(items, 3);
    assert_eq!(error.kind, ErrorKind::Network);
    assert!(error.retryable);
    // The end is sticky: pulling again returns it again.
    assert!(matches!(block_on(stream.next()), Event::Error(_)));
}

#[test]
fn a_panicking_producer_becomes_an_internal_error() {
    let source = Synthetic {
        panic_after: Some(1),
        ..synthetic(10, 8)
    };
    let stream: PullStream<Vec<u8>> = pull::spawn(Bound::Items(100), |sink| source.run(sink));
    let error = block_on(drain(&stream)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Internal);
    assert!(error.message.contains("synthetic panic after 1 chunks"));
}

struct ChannelWaiter(mpsc::Sender<Event<Vec<u8>>>);

impl Waiter<Vec<u8>> for ChannelWaiter {
    fn wake(self: Box<Self>, event: Event<Vec<u8>>) -> bool {
        self.0.send(event).is_ok()
    }
}

#[test]
fn an_armed_waiter_gets_exactly_one_event_and_disarm_reports_it() {
    let source = Synthetic {
        delay: Duration::from_millis(50),
        ..synthetic(3, 4)
    };
    let stream = pull::spawn(Bound::Items(10), |sink| source.run(sink));
    let (tx, rx) = mpsc::channel();

    // Nothing is ready yet: the pull arms the waiter.
    let waiter_tx = tx.clone();
    assert!(matches!(
        stream.pull(|| Box::new(ChannelWaiter(waiter_tx))),
        Pulled::Pending
    ));
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(first, Event::Item(ref b) if b == &vec![0u8; 4]));
    // Delivered: nothing left to disarm, and no second event to the same waiter.
    assert!(!stream.disarm());
    assert!(rx.recv_timeout(Duration::from_millis(150)).is_err());

    // Armed then disarmed before the item is ready: the item stays in the buffer.
    let source = Synthetic {
        delay: Duration::from_millis(100),
        ..synthetic(1, 4)
    };
    let stream = pull::spawn(Bound::Items(10), |sink| source.run(sink));
    assert!(matches!(
        stream.pull(|| Box::new(ChannelWaiter(tx))),
        Pulled::Pending
    ));
    assert!(stream.disarm());
    std::thread::sleep(Duration::from_millis(200));
    assert!(rx.try_recv().is_err());
    assert!(matches!(
        stream.pull(|| unreachable!("the item is buffered")),
        Pulled::Ready(Event::Item(ref b)) if b == &vec![0u8; 4]
    ));
}

#[test]
fn a_gone_consumer_stops_the_producer() {
    let source = Synthetic {
        delay: Duration::from_millis(20),
        ..synthetic(1_000_000, 4)
    };
    let stream = pull::spawn(Bound::Items(10), |sink| source.run(sink));
    let (tx, rx) = mpsc::channel();
    drop(rx); // The waiting consumer is gone: delivery fails.
    let _ = stream.pull(|| Box::new(ChannelWaiter(tx)));
    std::thread::sleep(Duration::from_millis(100));
    // The failed delivery closed the stream.
    assert!(matches!(
        stream.pull(|| unreachable!("the stream is closed")),
        Pulled::Ready(Event::Error(ref e)) if e.kind == ErrorKind::Cancelled
    ));
}

#[test]
fn the_coalescer_cuts_frames_into_equal_chunks() {
    let input: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 256) as u8).collect();
    let frames: Vec<Vec<u8>> = input.chunks(777).map(|c| c.to_vec()).collect();
    let stream = pull::spawn(
        Bound::Items(1000),
        move |sink: pull::Sink<Vec<u8>>| async move {
            let mut coalescer = Coalescer::<Vec<u8>>::new(4096, None);
            for frame in &frames {
                coalescer.write(frame, &sink).await?;
            }
            coalescer.flush(&sink).await
        },
    );
    let chunks = block_on(drain(&stream)).unwrap();
    let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
    assert!(sizes[..sizes.len() - 1].iter().all(|&s| s == 4096));
    assert_eq!(*sizes.last().unwrap(), 100_003 % 4096);
    assert_eq!(chunks.concat(), input);
}

#[test]
fn the_coalescer_sizes_buffers_by_the_bytes_announced_not_by_chunk_size() {
    // A chunk_size of 1 TiB on a 10-byte body: allocating it would abort the process.
    let stream = pull::spawn(
        Bound::Items(10),
        move |sink: pull::Sink<Vec<u8>>| async move {
            let mut coalescer = Coalescer::<Vec<u8>>::new(1 << 40, Some(10));
            coalescer.write(b"0123", &sink).await?;
            coalescer.write(b"456789", &sink).await?;
            coalescer.flush(&sink).await
        },
    );
    let chunks = block_on(drain(&stream)).unwrap();
    assert_eq!(chunks, vec![b"0123456789".to_vec()]);
    assert_eq!(chunks[0].capacity(), 10);
}

#[test]
fn the_coalescer_bounds_buffers_when_no_size_is_announced() {
    let stream = pull::spawn(
        Bound::Items(10),
        move |sink: pull::Sink<Vec<u8>>| async move {
            let mut coalescer = Coalescer::<Vec<u8>>::new(1 << 40, None);
            coalescer.write(&[7u8; 3000], &sink).await?;
            coalescer.flush(&sink).await
        },
    );
    let chunks = block_on(drain(&stream)).unwrap();
    assert_eq!(chunks.concat(), vec![7u8; 3000]);
    assert!(chunks[0].capacity() <= cloud_streams_core::chunk::DEFAULT_CHUNK_SIZE);
}
