//! `bouncer.wasm` as an OCI image that Istio (`WasmPlugin`), Envoy Gateway
//! (`EnvoyExtensionPolicy`, `code.type: Image`) and Higress (`WasmPlugin`) pull.
//!
//! The format is the *compat* variant of the Wasm image specification with OCI media types: an
//! image manifest (`application/vnd.oci.image.manifest.v1+json`), an OCI image config
//! (`application/vnd.oci.image.config.v1+json`, platform `wasip1`/`wasm`) and ONE layer
//! (`application/vnd.oci.image.layer.v1.tar+gzip`) holding a single file, `plugin.wasm`. That is
//! what `docker build` of `FROM scratch` + `COPY plugin.wasm ./` gives, and the one layout all
//! three hosts' image fetchers accept (Istio's `extractOCIStandardImage`, which Envoy Gateway
//! and Higress reuse); Istio's *oci* artifact variant needs two layers and is not accepted by
//! Envoy Gateway's docs. Any registry and any OCI tool (skopeo, crane, oras, podman) handles it.
//!
//! The image is written as an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) and as a tarball of that directory (an `oci-archive`). Everything is
//! deterministic: the same module gives the same digests (no timestamps, sorted JSON keys,
//! tar entries with mtime 0 and uid/gid 0).
//!
//! [`read_layout`] and [`read_archive`] read an image back and check it: `index.json` -> the
//! manifest -> config and layer blobs, every digest and size, and the module inside the layer.

use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, ImageConfiguration,
    ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, OciLayout, OciLayoutBuilder, Os, RootFsBuilder,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

/// The file name the hosts look for inside the layer.
pub const WASM_FILE: &str = "plugin.wasm";
/// `index.json`'s annotation naming a manifest (the tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Anything that went wrong, as one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err<E: fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error(format!("{what}: {e}"))
}

pub type Result<T> = std::result::Result<T, Error>;

/// What goes into the image besides the module.
#[derive(Debug, Clone)]
pub struct Options {
    /// The tag recorded in `index.json` (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// `org.opencontainers.image.title`.
    pub title: String,
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.description`.
    pub description: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tag: "latest".into(),
            title: "bouncer".into(),
            version: "0.0.0".into(),
            description: "Bouncer: JWT, API-key, ACL and authorization proxy-wasm filter".into(),
        }
    }
}

/// A built image: its blobs and the facts a user needs.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:…` of the manifest: the image digest a registry reports, what `@sha256:` pins
    /// and what Istio's `sha256` field is compared with for an OCI image.
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub config_digest: String,
    pub config: Vec<u8>,
    /// `sha256:…` of the gzipped layer blob.
    pub layer_digest: String,
    pub layer: Vec<u8>,
    /// `sha256:…` of the uncompressed layer tar (the config's `rootfs.diff_ids[0]`).
    pub diff_id: String,
    /// `sha256:…` of the module itself (Envoy Gateway's `code.sha256` for `type: HTTP`).
    pub module_digest: String,
    pub module_size: u64,
    pub index: Vec<u8>,
    pub oci_layout: Vec<u8>,
    pub tag: String,
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn digest(data: &[u8]) -> Result<Digest> {
    Digest::from_str(&sha256(data)).map_err(err("digest"))
}

/// JSON with every object's keys sorted (oci-spec keeps annotations in `HashMap`s), compact.
fn canonical<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    fn sort(v: Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<String, Value> =
                    m.into_iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().collect())
            }
            Value::Array(a) => Value::Array(a.into_iter().map(sort).collect()),
            other => other,
        }
    }
    let v = serde_json::to_value(v).map_err(err("JSON"))?;
    serde_json::to_vec(&sort(v)).map_err(err("JSON"))
}

fn tar_header(path: &str, size: u64, mode: u32) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(err("tar path"))?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

fn tar_dir_header(path: &str) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(err("tar path"))?;
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_cksum();
    Ok(h)
}

/// Builds the image of `wasm` (which must be a WebAssembly binary module).
pub fn build(wasm: &[u8], opts: &Options) -> Result<Image> {
    if !wasm.starts_with(b"\0asm") {
        return Err(Error("not a WebAssembly module (no \\0asm magic)".into()));
    }
    let module_size = wasm.len() as u64;

    // The layer: a tar with plugin.wasm, gzipped.
    let mut t = tar::Builder::new(Vec::new());
    t.append(&tar_header(WASM_FILE, module_size, 0o644)?, wasm)
        .map_err(err("tar"))?;
    let layer_tar = t.into_inner().map_err(err("tar"))?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&layer_tar).map_err(err("gzip"))?;
    let layer = gz.finish().map_err(err("gzip"))?;
    let diff_id = sha256(&layer_tar);

    let labels: HashMap<String, String> = [
        ("org.opencontainers.image.title", opts.title.as_str()),
        ("org.opencontainers.image.version", opts.version.as_str()),
        (
            "org.opencontainers.image.description",
            opts.description.as_str(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let config: ImageConfiguration = ImageConfigurationBuilder::default()
        .architecture(Arch::Wasm)
        .os(Os::Other("wasip1".into()))
        .config(
            ConfigBuilder::default()
                .labels(labels.clone())
                .build()
                .map_err(err("config"))?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.clone()])
                .build()
                .map_err(err("rootfs"))?,
        )
        .build()
        .map_err(err("config"))?;
    let config = canonical(&config)?;

    let layer_annotations: HashMap<String, String> = [(
        "org.opencontainers.image.title".to_owned(),
        WASM_FILE.into(),
    )]
    .into();
    let layer_desc = DescriptorBuilder::default()
        .media_type(MediaType::ImageLayerGzip)
        .digest(digest(&layer)?)
        .size(layer.len() as u64)
        .annotations(layer_annotations)
        .build()
        .map_err(err("layer descriptor"))?;
    let config_desc = Descriptor::new(
        MediaType::ImageConfig,
        config.len() as u64,
        digest(&config)?,
    );
    let manifest: ImageManifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc)
        .layers(vec![layer_desc])
        .annotations(labels)
        .build()
        .map_err(err("manifest"))?;
    let manifest = canonical(&manifest)?;
    let manifest_digest = sha256(&manifest);

    let index_annotations: HashMap<String, String> =
        [(REF_NAME.to_owned(), opts.tag.clone())].into();
    let manifest_desc = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(digest(&manifest)?)
        .size(manifest.len() as u64)
        .annotations(index_annotations)
        .build()
        .map_err(err("manifest descriptor"))?;
    let index: ImageIndex = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_desc])
        .build()
        .map_err(err("index"))?;
    let index = canonical(&index)?;
    let layout: OciLayout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(err("oci-layout"))?;
    let oci_layout = canonical(&layout)?;

    Ok(Image {
        manifest_digest,
        config_digest: sha256(&config),
        layer_digest: sha256(&layer),
        diff_id,
        module_digest: sha256(wasm),
        module_size,
        manifest,
        config,
        layer,
        index,
        oci_layout,
        tag: opts.tag.clone(),
    })
}

fn blob_path(d: &str) -> String {
    format!("blobs/{}", d.replacen(':', "/", 1))
}

impl Image {
    /// The layout's files, relative paths in a fixed order, blobs sorted by digest.
    pub fn files(&self) -> Vec<(String, &[u8])> {
        let mut blobs: Vec<(String, &[u8])> = vec![
            (blob_path(&self.manifest_digest), &self.manifest),
            (blob_path(&self.config_digest), &self.config),
            (blob_path(&self.layer_digest), &self.layer),
        ];
        blobs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = vec![
            ("oci-layout".to_owned(), self.oci_layout.as_slice()),
            ("index.json".to_owned(), self.index.as_slice()),
        ];
        out.extend(blobs);
        out
    }

    /// Writes the OCI image layout into `dir` (created; an existing layout there is replaced).
    pub fn write_layout(&self, dir: &Path) -> Result<()> {
        let blobs = dir.join("blobs");
        if blobs.exists() {
            std::fs::remove_dir_all(&blobs).map_err(err("removing the old blobs"))?;
        }
        std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(err("mkdir"))?;
        for (rel, data) in self.files() {
            let p = dir.join(&rel);
            std::fs::write(&p, data).map_err(err(&rel))?;
        }
        Ok(())
    }

    /// The layout as a tarball (what `skopeo copy oci-archive:…` reads).
    pub fn archive(&self) -> Result<Vec<u8>> {
        let mut t = tar::Builder::new(Vec::new());
        t.append(&tar_dir_header("blobs/")?, std::io::empty())
            .map_err(err("tar"))?;
        t.append(&tar_dir_header("blobs/sha256/")?, std::io::empty())
            .map_err(err("tar"))?;
        for (rel, data) in self.files() {
            t.append(&tar_header(&rel, data.len() as u64, 0o644)?, data)
                .map_err(err("tar"))?;
        }
        t.into_inner().map_err(err("tar"))
    }

    pub fn write_archive(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.archive()?).map_err(err("archive"))
    }
}

/// What reading an image back found.
#[derive(Debug, Clone)]
pub struct ReadBack {
    pub tag: Option<String>,
    pub manifest_digest: String,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    pub layer_digest: String,
    pub layer_size: u64,
    /// The module found as `plugin.wasm` in the layer.
    pub module: Vec<u8>,
}

/// Reads and checks an image from a function that returns a layout file by relative path.
fn read_from(get: &dyn Fn(&str) -> Result<Vec<u8>>) -> Result<ReadBack> {
    let layout: OciLayout =
        serde_json::from_slice(&get("oci-layout")?).map_err(err("oci-layout"))?;
    if layout.image_layout_version() != "1.0.0" {
        return Err(Error(format!(
            "oci-layout: imageLayoutVersion {}",
            layout.image_layout_version()
        )));
    }
    let index: ImageIndex =
        serde_json::from_slice(&get("index.json")?).map_err(err("index.json"))?;
    if index.schema_version() != 2 {
        return Err(Error("index.json: schemaVersion is not 2".into()));
    }
    let [mdesc] = index.manifests().as_slice() else {
        return Err(Error(format!(
            "index.json: {} manifests, expected 1",
            index.manifests().len()
        )));
    };
    let blob = |d: &Descriptor, want: &MediaType| -> Result<Vec<u8>> {
        if d.media_type() != want {
            return Err(Error(format!(
                "{}: media type {}, expected {want}",
                d.digest(),
                d.media_type()
            )));
        }
        let data = get(&blob_path(d.digest().as_ref()))?;
        if data.len() as u64 != d.size() {
            return Err(Error(format!(
                "{}: {} bytes, the descriptor says {}",
                d.digest(),
                data.len(),
                d.size()
            )));
        }
        let actual = sha256(&data);
        if actual != d.digest().to_string() {
            return Err(Error(format!(
                "{}: the blob's digest is {actual}",
                d.digest()
            )));
        }
        Ok(data)
    };
    let manifest_bytes = blob(mdesc, &MediaType::ImageManifest)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(err("manifest"))?;
    if manifest.schema_version() != 2 || manifest.media_type() != &Some(MediaType::ImageManifest) {
        return Err(Error("manifest: not an OCI image manifest".into()));
    }
    let config: ImageConfiguration =
        serde_json::from_slice(&blob(manifest.config(), &MediaType::ImageConfig)?)
            .map_err(err("config"))?;
    let [ldesc] = manifest
        .layers()
        .clone()
        .try_into()
        .map_err(|l: Vec<Descriptor>| {
            Error(format!(
                "manifest: {} layers, the hosts need exactly 1",
                l.len()
            ))
        })?;
    let layer = blob(&ldesc, &MediaType::ImageLayerGzip)?;
    let mut tar_bytes = Vec::new();
    GzDecoder::new(layer.as_slice())
        .read_to_end(&mut tar_bytes)
        .map_err(err("layer gzip"))?;
    if config.rootfs().diff_ids() != &vec![sha256(&tar_bytes)] {
        return Err(Error(
            "config: rootfs.diff_ids is not the uncompressed layer's digest".into(),
        ));
    }
    let mut module = None;
    let mut t = tar::Archive::new(tar_bytes.as_slice());
    for e in t.entries().map_err(err("layer tar"))? {
        let mut e = e.map_err(err("layer tar"))?;
        let path = e
            .path()
            .map_err(err("layer tar"))?
            .to_string_lossy()
            .into_owned();
        if path.rsplit('/').next() == Some(WASM_FILE) {
            let mut data = Vec::new();
            e.read_to_end(&mut data).map_err(err("layer tar"))?;
            module = Some(data);
        }
    }
    let module = module.ok_or_else(|| Error(format!("the layer has no {WASM_FILE}")))?;
    if !module.starts_with(b"\0asm") {
        return Err(Error(format!("{WASM_FILE} is not a WebAssembly module")));
    }
    Ok(ReadBack {
        tag: mdesc
            .annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .cloned(),
        manifest_digest: mdesc.digest().to_string(),
        manifest,
        config,
        layer_digest: ldesc.digest().to_string(),
        layer_size: ldesc.size(),
        module,
    })
}

/// Reads and checks the OCI image layout in `dir`.
pub fn read_layout(dir: &Path) -> Result<ReadBack> {
    read_from(&|rel| std::fs::read(dir.join(rel)).map_err(err(rel)))
}

/// Reads and checks an OCI image layout tarball.
pub fn read_archive(bytes: &[u8]) -> Result<ReadBack> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut t = tar::Archive::new(bytes);
    for e in t.entries().map_err(err("archive"))? {
        let mut e = e.map_err(err("archive"))?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e
            .path()
            .map_err(err("archive"))?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).map_err(err("archive"))?;
        files.insert(path.trim_start_matches("./").to_owned(), data);
    }
    read_from(&|rel| {
        files
            .get(rel)
            .cloned()
            .ok_or_else(|| Error(format!("archive: no {rel}")))
    })
}
