//! `bouncer-oci --wasm dist/bouncer.wasm --layout dist/oci --archive dist/bouncer-oci.tar
//! [--tag 0.1.0] [--version 0.1.0]`: writes the OCI image layout and its tarball, reads both
//! back (every digest and size checked), and prints the digests. See `make oci`.

use bouncer_oci::{build, read_archive, read_layout, Options};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: bouncer-oci --wasm FILE --layout DIR --archive FILE [--tag TAG] [--version V]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut wasm = None;
    let mut layout = None;
    let mut archive = None;
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let Some(v) = args.next() else {
            return usage();
        };
        match a.as_str() {
            "--wasm" => wasm = Some(PathBuf::from(v)),
            "--layout" => layout = Some(PathBuf::from(v)),
            "--archive" => archive = Some(PathBuf::from(v)),
            "--tag" => opts.tag = v,
            "--version" => opts.version = v,
            _ => return usage(),
        }
    }
    let (Some(wasm), Some(layout), Some(archive)) = (wasm, layout, archive) else {
        return usage();
    };
    match run(&wasm, &layout, &archive, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bouncer-oci: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    wasm: &Path,
    layout: &Path,
    archive: &Path,
    opts: &Options,
) -> Result<(), Box<dyn std::error::Error>> {
    let module = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let image = build(&module, opts)?;
    image.write_layout(layout)?;
    image.write_archive(archive)?;
    // Read both back: what was written is what the hosts will find.
    let from_dir = read_layout(layout)?;
    let from_tar = read_archive(&std::fs::read(archive)?)?;
    for r in [&from_dir, &from_tar] {
        if r.module != module || r.manifest_digest != image.manifest_digest {
            return Err("the image read back differs from the module".into());
        }
    }
    let archive_size = std::fs::metadata(archive)?.len();
    println!("image digest:  {}", image.manifest_digest);
    println!("tag:           {}", image.tag);
    println!("layout:        {}/", layout.display());
    println!(
        "archive:       {} ({archive_size} bytes)",
        archive.display()
    );
    println!(
        "manifest:      {} bytes; config {} ({} bytes)",
        image.manifest.len(),
        image.config_digest,
        image.config.len()
    );
    println!(
        "layer:         {} ({} bytes, tar+gzip of plugin.wasm)",
        image.layer_digest,
        image.layer.len()
    );
    println!(
        "plugin.wasm:   {} ({} bytes)",
        image.module_digest, image.module_size
    );
    println!(
        "push:          skopeo copy oci:{}:{} docker://REGISTRY/bouncer:{}",
        layout.display(),
        image.tag,
        image.tag
    );
    println!(
        "               (or: oras/crane/podman; Istio url oci://REGISTRY/bouncer@{})",
        image.manifest_digest
    );
    Ok(())
}
