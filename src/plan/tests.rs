use std::path::Path;

use super::*;

fn recipe(text: &str, dir: &Path) -> Recipe {
    let path = dir.join("recipe.toml");
    std::fs::write(&path, text).unwrap();
    Recipe::load(&path).unwrap()
}

const SETTINGS: LayerSettings = LayerSettings {
    compression: Compression::Gzip,
    source_date_epoch: 0,
    fake_root: false,
};

fn keys(
    plan: &Plan,
    parent: Option<&Digest>,
    env: &[(String, String)],
    s: &LayerSettings,
) -> Vec<Digest> {
    plan.steps
        .iter()
        .map(|p| p.cache_key(parent, env, s))
        .collect()
}

#[test]
fn keys_depend_on_step_parent_env_and_settings_but_not_on_names() {
    let t = tempfile::tempdir().unwrap();
    let a = Plan::new(
        recipe("[image]\nbase = \"scratch\"\n[[steps]]\nrun = \"echo a\"\n[[steps]]\nrun = [\"/bin/true\"]\n", t.path()),
        None,
    )
    .unwrap();
    assert_eq!(a.steps.len(), 2);
    assert_eq!(a.steps[1].number, 2);
    let k = keys(&a, None, &[], &SETTINGS);
    assert_ne!(k[0], k[1]);
    assert_eq!(k, keys(&a, None, &[], &SETTINGS), "keys are stable");

    let parent = Digest::of(b"parent");
    assert_ne!(keys(&a, Some(&parent), &[], &SETTINGS), k);
    let env = vec![("PATH".to_string(), "/bin".to_string())];
    assert_ne!(keys(&a, None, &env, &SETTINGS), k);
    for s in [
        LayerSettings {
            compression: Compression::Zstd,
            ..SETTINGS
        },
        LayerSettings {
            source_date_epoch: 1,
            ..SETTINGS
        },
        LayerSettings {
            fake_root: true,
            ..SETTINGS
        },
    ] {
        assert_ne!(keys(&a, None, &[], &s), k, "{s:?} must change the key");
    }

    // A step name is for people: it does not change what the step makes.
    let named = Plan::new(
        recipe(
            "[image]\nbase = \"scratch\"\n[[steps]]\nname = \"say a\"\nrun = \"echo a\"\n",
            t.path(),
        ),
        None,
    )
    .unwrap();
    assert_eq!(named.steps[0].cache_key(None, &[], &SETTINGS), k[0]);
    // A shell string and the same argv are the same step.
    let argv = Plan::new(
        recipe(
            "[image]\nbase = \"scratch\"\n[[steps]]\nrun = [\"/bin/sh\", \"-c\", \"echo a\"]\n",
            t.path(),
        ),
        None,
    )
    .unwrap();
    assert_eq!(argv.steps[0].cache_key(None, &[], &SETTINGS), k[0]);
}

#[test]
fn copy_keys_follow_the_content_of_the_source() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("motd"), "one").unwrap();
    let text =
        "[image]\nbase = \"scratch\"\n[[steps]]\ncopy = { src = \"motd\", dest = \"/etc/motd\" }\n";
    let first = Plan::new(recipe(text, t.path()), None).unwrap();
    assert!(first.steps[0].inputs.is_some());
    let k1 = first.steps[0].cache_key(None, &[], &SETTINGS);
    std::fs::write(t.path().join("motd"), "two").unwrap();
    let second = Plan::new(recipe(text, t.path()), None).unwrap();
    assert_ne!(second.steps[0].cache_key(None, &[], &SETTINGS), k1);
    let moded = Plan::new(
        recipe(
            &text.replace(
                "dest = \"/etc/motd\"",
                "dest = \"/etc/motd\", mode = \"0600\"",
            ),
            t.path(),
        ),
        None,
    )
    .unwrap();
    assert_ne!(
        moded.steps[0].cache_key(None, &[], &SETTINGS),
        second.steps[0].cache_key(None, &[], &SETTINGS)
    );
}

#[test]
fn source_date_epoch_comes_from_env_then_recipe_then_zero() {
    let t = tempfile::tempdir().unwrap();
    let r = recipe(
        "[image]\nbase = \"scratch\"\nsource_date_epoch = 42\n",
        t.path(),
    );
    assert_eq!(Plan::new(r.clone(), None).unwrap().source_date_epoch, 42);
    assert_eq!(
        Plan::new(r.clone(), Some("7")).unwrap().source_date_epoch,
        7
    );
    assert_eq!(
        Plan::new(r.clone(), Some("")).unwrap().source_date_epoch,
        42
    );
    let err = Plan::new(r, Some("yesterday")).unwrap_err().to_string();
    assert!(err.contains("SOURCE_DATE_EPOCH='yesterday'"), "{err}");
    let plain = recipe("[image]\nbase = \"scratch\"\n", t.path());
    assert_eq!(Plan::new(plain, None).unwrap().source_date_epoch, 0);
}

#[test]
fn chain_id_follows_the_oci_definition() {
    assert_eq!(chain_id(&[]), None);
    let a = Digest::of(b"a");
    let b = Digest::of(b"b");
    assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
    let expected = Digest::of(format!("{a} {b}").as_bytes());
    assert_eq!(chain_id(&[a.clone(), b.clone()]), Some(expected.clone()));
    let c = Digest::of(b"c");
    assert_eq!(
        chain_id(&[a, b, c.clone()]),
        Some(Digest::of(format!("{expected} {c}").as_bytes()))
    );
}
