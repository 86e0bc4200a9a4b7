//! Builds the portal's files into the function: each asset gets a name
//! with its content's hash (so it can be cached for a year), and the
//! `{{name}}` placeholders in the page and scripts become those names.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let portal = manifest.join("../../portal");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let pdfjs = portal.join("node_modules/pdfjs-dist/build");
    if !pdfjs.join("pdf.min.mjs").exists() {
        panic!(
            "{} is missing: run `npm ci --prefix portal` first (scripts/up and scripts/test do)",
            pdfjs.display()
        );
    }
    // Each file may name the ones listed before it.
    let files: [(PathBuf, &str, &str); 6] = [
        (pdfjs.join("pdf.min.mjs"), "pdf.mjs", "text/javascript"),
        (
            pdfjs.join("pdf.worker.min.mjs"),
            "pdf.worker.mjs",
            "text/javascript",
        ),
        (portal.join("src/i18n.js"), "i18n.js", "text/javascript"),
        (portal.join("src/api.js"), "api.js", "text/javascript"),
        (portal.join("src/app.js"), "app.js", "text/javascript"),
        (portal.join("src/app.css"), "app.css", "text/css"),
    ];
    let mut names: Vec<(String, String)> = Vec::new();
    let mut entries = String::new();
    for (source, name, content_type) in &files {
        println!("cargo:rerun-if-changed={}", source.display());
        let body = with_names(&read(source), &names);
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let (stem, ext) = name.rsplit_once('.').unwrap();
        let hashed = format!("{stem}.{:08x}.{ext}", hasher.finish() as u32);
        std::fs::write(out.join(&hashed), &body).unwrap();
        std::fs::write(out.join(format!("{hashed}.gz")), gzip(&body)).unwrap();
        entries.push_str(&format!(
            "    meterai::routes::portal::Asset {{ path: \"/assets/{hashed}\", content_type: \"{content_type}\", body: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{hashed}\")), gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{hashed}.gz\")) }},\n"
        ));
        names.push((name.to_string(), format!("/assets/{hashed}")));
    }
    let index = portal.join("src/index.html");
    println!("cargo:rerun-if-changed={}", index.display());
    std::fs::write(out.join("index.html"), with_names(&read(&index), &names)).unwrap();
    std::fs::write(
        out.join("site.rs"),
        format!(
            "/// The portal's page and files.\npub static SITE: meterai::routes::portal::Site = meterai::routes::portal::Site {{\n    index: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/index.html\")),\n    assets: &[\n{entries}    ],\n}};\n"
        ),
    )
    .unwrap();
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `{{app.js}}` -> `/assets/app.1a2b3c4d.js`, for every file named so far.
fn with_names(body: &[u8], names: &[(String, String)]) -> Vec<u8> {
    let Ok(mut text) = String::from_utf8(body.to_vec()) else {
        return body.to_vec();
    };
    for (name, path) in names {
        text = text.replace(&format!("{{{{{name}}}}}"), path);
    }
    text.into_bytes()
}
