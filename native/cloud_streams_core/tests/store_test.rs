//! The store core driven from Rust, on the in-memory backend. The conformance suite over every
//! backend is test/object_store_x/*_test.exs.

use bytes::Bytes;
use cloud_streams_core::runtime;
use cloud_streams_core::store::config::{self, Backend, StoreConfig};
use cloud_streams_core::store::ops::{self, ByteRange};
use cloud_streams_core::ErrorKind;
use object_store::{GetOptions, PutOptions};

fn memory(prefix: Option<&str>) -> cloud_streams_core::store::Store {
    config::build(&StoreConfig {
        backend: Backend::Memory,
        options: vec![],
        client: vec![],
        retry: None,
        from_env: false,
        url: None,
        root: None,
        confine_to_root: false,
        prefix: prefix.map(str::to_string),
    })
    .unwrap()
}

#[test]
fn ranges_resolve_against_the_object_size() {
    assert_eq!(ByteRange::Bounded(0, 1).within(10).unwrap(), 0..1);
    assert_eq!(ByteRange::Bounded(5, 100).within(10).unwrap(), 5..10);
    assert_eq!(ByteRange::Offset(7).within(10).unwrap(), 7..10);
    assert_eq!(ByteRange::Suffix(3).within(10).unwrap(), 7..10);
    assert_eq!(ByteRange::Suffix(30).within(10).unwrap(), 0..10);
    let past = ByteRange::Bounded(10, 12).within(10).unwrap_err();
    assert_eq!(past.kind, ErrorKind::InvalidArgument);
    assert!(ByteRange::Bounded(4, 4).to_get_range().is_err());
    assert!(ByteRange::Suffix(0).to_get_range().is_err());
}

#[test]
fn paths_with_dot_segments_or_empty_are_invalid() {
    for bad in ["", "../x", "a/../b", "a//b"] {
        let error = ops::parse_path(bad).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidArgument, "{bad:?}");
    }
    assert!(ops::parse_path("ünï cödé/ok.txt").is_ok());
}

#[test]
fn put_get_and_bulk_delete_report_paths_relative_to_the_prefix() {
    let store = memory(Some("base/dir"));
    runtime::get().block_on(async {
        ops::put(
            &store,
            "a.txt",
            Bytes::from_static(b"hello"),
            PutOptions::default(),
        )
        .await
        .unwrap();
        let (data, meta) = ops::get(&store, "a.txt", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(&data[..], b"hello");
        assert_eq!(meta.location.as_ref(), "a.txt");

        let missing = ops::head(&store, "nope").await.unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        assert_eq!(missing.path.as_deref(), Some("nope"));

        let (deleted, failed) =
            ops::delete_many(&store, vec!["a.txt".into(), "gone".into(), "x/../y".into()]).await;
        assert_eq!(deleted, 2);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "x/../y");
    });
}
