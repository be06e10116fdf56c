//! Builds an image from a small wasm module, writes it as a layout directory and a tarball, and
//! reads both back: index.json -> manifest -> config and layer blobs with matching digests and
//! sizes, and the layer's plugin.wasm is the module, byte for byte and by sha256.

use bouncer_oci::{build, read_archive, read_layout, sha256, Options, WASM_FILE};
use oci_spec::image::{Arch, ImageIndex, ImageManifest, MediaType, Os};
use serde_json::Value;
use std::path::PathBuf;

/// A valid, tiny wasm module: the header, a type section and an empty function.
const MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: empty body
];

fn opts() -> Options {
    Options {
        tag: "9.9.9".into(),
        version: "9.9.9".into(),
        ..Options::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bouncer-oci-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn layout_and_archive_read_back_to_the_module() {
    let image = build(MODULE, &opts()).unwrap();
    let dir = scratch("layout");
    let layout = dir.join("oci");
    let archive = dir.join("bouncer-oci.tar");
    image.write_layout(&layout).unwrap();
    image.write_archive(&archive).unwrap();

    let module_digest = sha256(MODULE);
    assert_eq!(image.module_digest, module_digest);
    for back in [
        read_layout(&layout).unwrap(),
        read_archive(&std::fs::read(&archive).unwrap()).unwrap(),
    ] {
        assert_eq!(back.module, MODULE);
        assert_eq!(sha256(&back.module), module_digest);
        assert_eq!(back.tag.as_deref(), Some("9.9.9"));
        assert_eq!(back.manifest_digest, image.manifest_digest);
        assert_eq!(back.layer_digest, image.layer_digest);
        assert_eq!(back.layer_size, image.layer.len() as u64);
        assert_eq!(back.config.architecture(), &Arch::Wasm);
        assert_eq!(back.config.os(), &Os::Other("wasip1".into()));
        assert_eq!(back.config.rootfs().typ(), "layers");
        assert_eq!(
            back.config.rootfs().diff_ids(),
            &vec![image.diff_id.clone()]
        );
    }

    // The layout on disk, by hand: the files the OCI image-layout spec requires.
    assert_eq!(
        json(&layout.join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let index: ImageIndex = ImageIndex::from_file(layout.join("index.json")).unwrap();
    assert_eq!(index.media_type(), &Some(MediaType::ImageIndex));
    let m = &index.manifests()[0];
    assert_eq!(m.media_type(), &MediaType::ImageManifest);
    let mpath = layout.join("blobs/sha256").join(m.digest().digest());
    let mbytes = std::fs::read(&mpath).unwrap();
    assert_eq!(sha256(&mbytes), m.digest().to_string());
    assert_eq!(mbytes.len() as u64, m.size());
    let manifest: ImageManifest = ImageManifest::from_file(&mpath).unwrap();
    assert_eq!(manifest.schema_version(), 2);
    assert_eq!(manifest.config().media_type(), &MediaType::ImageConfig);
    assert_eq!(
        manifest.layers().len(),
        1,
        "the hosts take exactly one layer"
    );
    for d in std::iter::once(manifest.config()).chain(manifest.layers()) {
        let b = std::fs::read(layout.join("blobs/sha256").join(d.digest().digest())).unwrap();
        assert_eq!(sha256(&b), d.digest().to_string());
        assert_eq!(b.len() as u64, d.size());
    }
    let layer = &manifest.layers()[0];
    assert_eq!(
        layer.media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        layer.annotations().as_ref().unwrap()["org.opencontainers.image.title"],
        WASM_FILE
    );
    // Exactly the blobs the manifest and index name: nothing stale, nothing missing.
    let mut blobs: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    blobs.sort();
    let mut named = vec![
        m.digest().digest().to_owned(),
        manifest.config().digest().digest().to_owned(),
        layer.digest().digest().to_owned(),
    ];
    named.sort();
    assert_eq!(blobs, named);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_image_is_reproducible_and_follows_the_module() {
    let a = build(MODULE, &opts()).unwrap();
    let b = build(MODULE, &opts()).unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.archive().unwrap(), b.archive().unwrap());
    let mut other = MODULE.to_vec();
    other.extend_from_slice(&[0x00, 0x03, 0x01, 0x78, 0x00]); // a custom section "x"
    let c = build(&other, &opts()).unwrap();
    assert_ne!(a.manifest_digest, c.manifest_digest);
    assert_ne!(a.layer_digest, c.layer_digest);
    // A rebuild of the layout in the same place leaves no stale blob behind.
    let dir = scratch("rebuild");
    a.write_layout(&dir).unwrap();
    c.write_layout(&dir).unwrap();
    assert_eq!(read_layout(&dir).unwrap().module, other);
    assert_eq!(
        std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count(),
        3
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_image_is_refused() {
    assert!(build(b"not wasm", &opts()).is_err());
    let image = build(MODULE, &opts()).unwrap();
    let dir = scratch("damaged");
    image.write_layout(&dir).unwrap();
    // A layer blob whose bytes no longer match its digest.
    let layer = dir
        .join("blobs/sha256")
        .join(&image.layer_digest["sha256:".len()..]);
    let mut bytes = std::fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    let e = read_layout(&dir).unwrap_err().to_string();
    assert!(e.contains("digest"), "{e}");
    // A layer blob of another size than its descriptor says.
    bytes.push(0);
    std::fs::write(&layer, &bytes).unwrap();
    let e = read_layout(&dir).unwrap_err().to_string();
    assert!(e.contains("bytes"), "{e}");
    // A missing blob.
    std::fs::remove_file(&layer).unwrap();
    assert!(read_layout(&dir).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
