//! `Recipe::load` and `check_sources`: real files in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::recipe::{Base, Recipe, RecipeError, StepKind};

/// A temporary recipe directory.
struct Dir(TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().expect("temp dir"))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }

    fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, contents).expect("write");
        path
    }

    fn load(&self, recipe: &str) -> Result<Recipe, RecipeError> {
        Recipe::load(&self.write("recipe.toml", recipe))
    }

    fn load_err(&self, recipe: &str) -> String {
        match self.load(recipe) {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => e.to_string(),
        }
    }
}

const NOT_FOUND: &str = "No such file or directory (os error 2)";

#[test]
fn present_sources_load() {
    let dir = Dir::new();
    dir.write(
        "base.tar",
        "not really a tar; only existence is checked here",
    );
    dir.write("files/motd", "hello\n");
    dir.write("files/tree/a", "a\n");
    // An absolute source is read inside the build context, as Docker does.
    let abs = dir.write("elsewhere/abs.txt", "abs\n");
    let recipe = dir
        .load(
            r#"[image]
base = "rootfs:base.tar"
[[steps]]
copy = { src = "files/motd", dest = "/etc/motd" }
[[steps]]
copy = { src = "files/tree", dest = "/opt/tree" }
[[steps]]
copy = { src = "/elsewhere/abs.txt", dest = "/abs" }
"#,
        )
        .expect("valid recipe");
    assert_eq!(recipe.dir, dir.0.path());
    assert_eq!(recipe.image.base, Base::Rootfs(dir.path("base.tar")));
    let srcs: Vec<&Path> = recipe
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Copy(c) => Some(c.src.as_path()),
            _ => None,
        })
        .collect();
    assert_eq!(
        srcs,
        [
            dir.path("files/motd").as_path(),
            dir.path("files/tree").as_path(),
            abs.as_path()
        ]
    );
}

#[test]
fn missing_rootfs_is_reported_at_the_base_line() {
    let dir = Dir::new();
    let text = "# base from a tar\n[image]\nbase = \"rootfs:../nope/base.tar\"\n";
    // Schema-only parsing does not look at files...
    let mut recipe = Recipe::parse(text, &dir.path("recipe.toml")).expect("schema is fine");
    // ...check_sources does, and load runs both.
    let expected = format!(
        "{}:3: image: cannot use base rootfs tar '{}': {NOT_FOUND}",
        dir.path("recipe.toml").display(),
        dir.path("../nope/base.tar").display()
    );
    assert_eq!(
        recipe.check_sources().expect_err("missing").to_string(),
        expected
    );
    assert_eq!(dir.load_err(text), expected);
}

#[test]
fn rootfs_that_is_a_directory_is_refused() {
    let dir = Dir::new();
    fs::create_dir(dir.path("base.tar")).expect("mkdir");
    assert_eq!(
        dir.load_err("[image]\nbase = \"rootfs:base.tar\"\n"),
        format!(
            "{}:2: image: cannot use base rootfs tar '{}': it is not a regular file",
            dir.path("recipe.toml").display(),
            dir.path("base.tar").display()
        )
    );
}

#[test]
fn missing_copy_source_is_reported_at_its_src_line() {
    let dir = Dir::new();
    dir.write("files/motd", "hi\n");
    let text = r#"[image]
base = "scratch"
[[steps]]
copy = { src = "files/motd", dest = "/etc/motd" }
[[steps]]
name = "the missing one"
copy = { src = "files/nope", dest = "/x" }
"#;
    assert_eq!(
        dir.load_err(text),
        format!(
            "{}:7: step 2.copy: cannot use copy source '{}': {NOT_FOUND}",
            dir.path("recipe.toml").display(),
            dir.path("files/nope").display()
        )
    );
    // In a [steps.copy] sub-table the line is that of `src`, not of the step.
    let text =
        "[image]\nbase = \"scratch\"\n[[steps]]\n[steps.copy]\ndest = \"/x\"\nsrc = \"gone\"\n";
    assert_eq!(
        dir.load_err(text),
        format!(
            "{}:6: step 1.copy: cannot use copy source '{}': {NOT_FOUND}",
            dir.path("recipe.toml").display(),
            dir.path("gone").display()
        )
    );
}

#[test]
fn copy_source_that_is_a_fifo_is_refused() {
    let dir = Dir::new();
    nix::unistd::mkfifo(
        &dir.path("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let err = dir.load_err(
        "[image]\nbase = \"scratch\"\n[[steps]]\ncopy = { src = \"fifo\", dest = \"/f\" }\n",
    );
    assert!(
        err.ends_with("': it is neither a regular file nor a directory"),
        "{err}"
    );
    assert!(
        err.contains(":4: step 1.copy: cannot use copy source '"),
        "{err}"
    );
}

#[test]
fn oci_layout_base_needs_a_layout() {
    let dir = Dir::new();
    let text = "[image]\nbase = \"oci:layout:v1\"\n";
    let file = dir.path("recipe.toml");
    assert_eq!(
        dir.load_err(text),
        format!(
            "{}:2: image: cannot use base OCI layout '{}': {NOT_FOUND}",
            file.display(),
            dir.path("layout").display()
        )
    );
    fs::create_dir(dir.path("layout")).expect("mkdir");
    dir.write("layout/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    assert_eq!(
        dir.load_err(text),
        format!(
            "{}:2: image: cannot use base OCI layout '{}': it is not an OCI image layout (index.json: {NOT_FOUND})",
            file.display(),
            dir.path("layout").display()
        )
    );
    dir.write("layout/index.json", "{}");
    let recipe = dir.load(text).expect("layout present");
    assert_eq!(
        recipe.image.base,
        Base::Oci {
            dir: dir.path("layout"),
            tag: "v1".into()
        }
    );
}

#[test]
fn registry_and_scratch_bases_need_no_files() {
    let dir = Dir::new();
    for base in ["scratch", "docker.io/library/debian:bookworm"] {
        dir.load(&format!("[image]\nbase = \"{base}\"\n"))
            .expect("no file needed");
    }
}

#[test]
fn schema_errors_come_before_source_errors() {
    let dir = Dir::new();
    let err = dir.load_err("[image]\nbase = \"rootfs:nope.tar\"\nsource_date_epoch = -5\n");
    assert!(err.ends_with(":3: image: 'source_date_epoch' must be a non-negative integer (seconds since 1970-01-01 UTC)"), "{err}");
}

#[test]
fn unreadable_recipe_file() {
    let dir = Dir::new();
    let path = dir.path("absent.toml");
    let err = Recipe::load(&path).expect_err("no file");
    assert!(matches!(err, RecipeError::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: cannot read the recipe: {NOT_FOUND}", path.display())
    );
    assert!(err.location().is_none());
}

#[test]
fn copy_sources_cannot_leave_the_build_context() {
    let dir = Dir::new();
    dir.write("files/motd", "hello\n");
    std::os::unix::fs::symlink("/etc/passwd", dir.path("files/passwd")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path("etc-link")).unwrap();
    std::os::unix::fs::symlink("motd", dir.path("files/inside")).unwrap();
    let step = |src: &str| {
        format!(
            "[image]\nbase = \"scratch\"\n[[steps]]\ncopy = {{ src = \"{src}\", dest = \"/x\" }}\n"
        )
    };
    for (src, why) in [
        ("../../etc/passwd", "leaves the build context"),
        ("files/../../x", "leaves the build context"),
        ("files/passwd", "outside the build context"),
        ("etc-link/passwd", "outside the build context"),
    ] {
        let err = dir.load_err(&step(src));
        assert!(err.contains(why), "{src}: {err}");
        assert!(err.contains(":4: step 1.copy:"), "{src}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // A link that stays inside is followed to its real path.
    let recipe = dir.load(&step("files/inside")).expect("inside");
    let StepKind::Copy(c) = &recipe.steps[0].kind else {
        panic!("not a copy")
    };
    assert_eq!(
        c.src,
        std::fs::canonicalize(dir.path("files/motd")).unwrap()
    );
}
