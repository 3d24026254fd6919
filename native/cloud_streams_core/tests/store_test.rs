//! The store core driven from Rust, on the in-memory backend. The conformance suite over every
//! backend is test/object_store_x/*_test.exs.

use bytes::Bytes;
use cloud_streams_core::runtime;
use cloud_streams_core::store::config::{self, Backend, StoreConfig};
use cloud_streams_core::store::ops::{self, ByteRange};
use cloud_streams_core::ErrorKind;
use object_store::{GetOptions, PutOptions};
use std::sync::Arc;

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

#[test]
fn a_listing_page_holds_what_arrived_whatever_page_size() {
    use cloud_streams_core::pull::{self, Bound, Event};
    use cloud_streams_core::store::list::{self, Listing};
    let store = Arc::new(memory(None));
    runtime::get().block_on(async {
        for i in 0..3 {
            let payload = Bytes::from_static(b"x");
            ops::put(&store, &format!("k{i}"), payload, PutOptions::default())
                .await
                .unwrap();
        }
    });
    // `ready_chunks(usize::MAX)` would try to allocate the page up front and abort.
    let listing = Listing {
        prefix: None,
        offset: None,
        page_size: usize::MAX,
    };
    let stream = pull::spawn(Bound::Items(1), move |sink| list::run(store, listing, sink));
    let page = match runtime::get().block_on(stream.next()) {
        Event::Item(page) => page,
        _ => panic!("expected a page"),
    };
    assert_eq!(page.0.len(), 3);
    assert!(page.0.capacity() < 1000);
}

fn local(root: &std::path::Path, confine_to_root: bool) -> cloud_streams_core::store::Store {
    config::build(&StoreConfig {
        backend: Backend::Local,
        options: vec![],
        client: vec![],
        retry: None,
        from_env: false,
        url: None,
        root: Some(root.to_string_lossy().into_owned()),
        confine_to_root,
        prefix: None,
    })
    .unwrap()
}

#[test]
fn a_store_confined_to_its_root_refuses_what_resolves_outside_it() {
    use std::os::unix::fs::symlink;
    let base = std::env::temp_dir().join(format!("cs_confine_{}", std::process::id()));
    let (root, outside) = (base.join("root"), base.join("outside"));
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), b"outside").unwrap();
    std::fs::write(root.join("dir/inside.txt"), b"inside").unwrap();
    symlink(outside.join("secret.txt"), root.join("file_link")).unwrap();
    symlink(&outside, root.join("dir_link")).unwrap();
    symlink(root.join("dir/inside.txt"), root.join("inner_link")).unwrap();
    symlink(outside.join("missing"), root.join("dangling")).unwrap();

    let confined = local(&root, true);
    let open = local(&root, false);
    runtime::get().block_on(async {
        for path in ["file_link", "dir_link/secret.txt", "dangling"] {
            let error = ops::get(&confined, path, GetOptions::default())
                .await
                .unwrap_err();
            assert_eq!(error.kind, ErrorKind::PermissionDenied, "{path}");
        }
        let write = ops::put(
            &confined,
            "dir_link/new.txt",
            Bytes::from_static(b"x"),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(write.kind, ErrorKind::PermissionDenied);
        assert!(!outside.join("new.txt").exists());

        // Inside the root, links and new files are fine.
        let (data, _) = ops::get(&confined, "inner_link", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(&data[..], b"inside");
        ops::put(
            &confined,
            "dir/new.txt",
            Bytes::from_static(b"x"),
            PutOptions::default(),
        )
        .await
        .unwrap();

        let listed: Vec<String> = ops::list(&confined, None, None)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        assert!(listed
            .iter()
            .all(|l| !l.starts_with("dir_link") && l != "file_link"));
        assert!(listed.contains(&"dir/inside.txt".to_string()));

        // Without the option, links are followed wherever they point.
        let (data, _) = ops::get(&open, "file_link", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(&data[..], b"outside");
    });
    std::fs::remove_dir_all(&base).unwrap();
}
