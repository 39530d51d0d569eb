//! The `SecretStore` contract.

use automations::domain::secret::SecretValue;

const CANARY: &str = "canary-7f3a-secret-value";

on_both_backends! {
    async fn a_secret_is_stored_rotated_and_deleted(stores) {
        let name = "ml-team/GITHUB_TOKEN";
        stores.secrets.put(name, &SecretValue::new("v1").unwrap()).await.unwrap();
        assert_eq!(stores.secrets.get(name).await.unwrap().unwrap().expose(), "v1");
        stores.secrets.put(name, &SecretValue::new("v2").unwrap()).await.unwrap();
        assert_eq!(stores.secrets.get(name).await.unwrap().unwrap().expose(), "v2");
        stores.secrets.delete(name).await.unwrap();
        assert!(stores.secrets.get(name).await.unwrap().is_none());
    }
}

on_both_backends! {
    async fn a_deleted_name_can_be_reused_at_once(stores) {
        let name = "ml-team/REUSED";
        stores.secrets.put(name, &SecretValue::new("first").unwrap()).await.unwrap();
        stores.secrets.delete(name).await.unwrap();
        stores.secrets.put(name, &SecretValue::new("second").unwrap()).await.unwrap();
        assert_eq!(stores.secrets.get(name).await.unwrap().unwrap().expose(), "second");
        stores.secrets.delete("ml-team/NEVER_EXISTED").await.unwrap();
    }
}

on_both_backends! {
    async fn secrets_of_different_names_do_not_mix(stores) {
        stores.secrets.put("a/X", &SecretValue::new("one").unwrap()).await.unwrap();
        stores.secrets.put("b/X", &SecretValue::new("two").unwrap()).await.unwrap();
        assert_eq!(stores.secrets.get("a/X").await.unwrap().unwrap().expose(), "one");
        assert_eq!(stores.secrets.get("b/X").await.unwrap().unwrap().expose(), "two");
    }
}

on_both_backends! {
    async fn a_stored_value_never_shows_in_debug_output(stores) {
        stores.secrets.put("t/CANARY", &SecretValue::new(CANARY).unwrap()).await.unwrap();
        let value = stores.secrets.get("t/CANARY").await.unwrap();
        let printed = format!("{value:?} {:#?}", value);
        assert!(!printed.contains(CANARY), "{printed}");
        assert_eq!(value.unwrap().expose(), CANARY);
    }
}

on_both_backends! {
    async fn a_64_kib_value_round_trips(stores) {
        let big = "x".repeat(64 * 1024);
        stores.secrets.put("t/BIG", &SecretValue::new(big.clone()).unwrap()).await.unwrap();
        assert_eq!(stores.secrets.get("t/BIG").await.unwrap().unwrap().expose(), big);
    }
}
