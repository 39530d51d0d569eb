//! The `Table` contract.

use std::collections::HashSet;

use automations::ports::error::StoreError;
use automations::ports::table::{Condition, Cursor, Item, Key, Query, WriteOp};
use jiff::Timestamp;
use serde_json::json;

fn item(pk: &str, sk: &str) -> Item {
    Item::new(pk, sk, json!({"sk": sk, "n": 1}))
}

on_both_backends! {
    async fn create_if_absent_conflicts_when_the_item_exists(stores) {
        stores.table.put(item("P", "A"), Condition::Absent).await.unwrap();
        let second = stores.table.put(item("P", "A"), Condition::Absent).await;
        assert!(matches!(second, Err(StoreError::ConditionFailed)), "{second:?}");
    }
}

on_both_backends! {
    async fn get_returns_what_was_put_and_nothing_for_a_missing_key(stores) {
        let written = item("P", "A").with_gsi1("G", "1").expiring_at(Timestamp::now().as_second() + 3600);
        stores.table.put(written.clone(), Condition::None).await.unwrap();
        assert_eq!(stores.table.get(&Key::new("P", "A")).await.unwrap(), Some(written));
        assert_eq!(stores.table.get(&Key::new("P", "B")).await.unwrap(), None);
    }
}

on_both_backends! {
    async fn exactly_one_of_two_concurrent_versioned_updates_wins(stores) {
        stores.table.put(item("P", "V"), Condition::Absent).await.unwrap();
        let update = |n: i64| {
            let table = stores.table.clone();
            async move {
                let mut next = Item::new("P", "V", json!({"n": n}));
                next.version = 2;
                table.put(next, Condition::Version(1)).await
            }
        };
        let (a, b) = tokio::join!(tokio::spawn(update(10)), tokio::spawn(update(20)));
        let results = [a.unwrap(), b.unwrap()];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(StoreError::ConditionFailed))));
        let stored = stores.table.get(&Key::new("P", "V")).await.unwrap().unwrap();
        assert_eq!(stored.version, 2);
        let winner = if results[0].is_ok() { 10 } else { 20 };
        assert_eq!(stored.data["n"], winner);
    }
}

on_both_backends! {
    async fn a_versioned_update_fails_on_a_stale_version(stores) {
        stores.table.put(item("P", "V"), Condition::Absent).await.unwrap();
        let mut next = item("P", "V");
        next.version = 3;
        let r = stores.table.put(next, Condition::Version(2)).await;
        assert!(matches!(r, Err(StoreError::ConditionFailed)), "{r:?}");
    }
}

on_both_backends! {
    async fn paging_returns_every_item_once_in_order_across_pages(stores) {
        for i in 0..25 {
            stores.table.put(item("PAGE", &format!("I#{i:03}")), Condition::None).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut pages = 0;
        loop {
            let page = stores.table.query(Query::new("PAGE", "I#", 10).after(cursor)).await.unwrap();
            assert!(page.items.len() <= 10);
            pages += 1;
            seen.extend(page.items.into_iter().map(|i| i.sk));
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        let expected: Vec<String> = (0..25).map(|i| format!("I#{i:03}")).collect();
        assert_eq!(seen, expected);
        assert_eq!(pages, 3);
    }
}

on_both_backends! {
    async fn descending_paging_returns_newest_first(stores) {
        for i in 0..7 {
            stores.table.put(item("DESC", &format!("I#{i}")), Condition::None).await.unwrap();
        }
        let first = stores.table.query(Query::new("DESC", "I#", 4).descending()).await.unwrap();
        let second = stores.table.query(Query::new("DESC", "I#", 4).descending().after(first.cursor.clone())).await.unwrap();
        let sks: Vec<_> = first.items.iter().chain(&second.items).map(|i| i.sk.as_str()).collect();
        assert_eq!(sks, ["I#6", "I#5", "I#4", "I#3", "I#2", "I#1", "I#0"]);
        assert!(second.cursor.is_none());
    }
}

on_both_backends! {
    async fn a_query_sees_only_its_partition_and_sort_key_prefix(stores) {
        for (pk, sk) in [("T", "A#1"), ("T", "A#2"), ("T", "AB#1"), ("T", "B#1"), ("U", "A#3")] {
            stores.table.put(item(pk, sk), Condition::None).await.unwrap();
        }
        let page = stores.table.query(Query::new("T", "A#", 100)).await.unwrap();
        let sks: Vec<_> = page.items.iter().map(|i| i.sk.as_str()).collect();
        assert_eq!(sks, ["A#1", "A#2"]);
        assert!(page.cursor.is_none());
    }
}

on_both_backends! {
    async fn gsi1_queries_span_partitions_in_index_order_with_paging(stores) {
        for (i, pk) in ["X1", "X2", "X3", "X4", "X5"].iter().enumerate() {
            let it = item(pk, "META").with_gsi1("SCOPE#t#p", format!("2026-01-0{}", 5 - i));
            stores.table.put(it, Condition::None).await.unwrap();
        }
        stores.table.put(item("Y", "META").with_gsi1("SCOPE#t#other", "2026-01-01"), Condition::None).await.unwrap();
        let first = stores.table.query_gsi1(Query::new("SCOPE#t#p", "", 3)).await.unwrap();
        let rest = stores.table.query_gsi1(Query::new("SCOPE#t#p", "", 3).after(first.cursor.clone())).await.unwrap();
        let pks: Vec<_> = first.items.iter().chain(&rest.items).map(|i| i.pk.as_str()).collect();
        assert_eq!(pks, ["X5", "X4", "X3", "X2", "X1"]);
        assert!(rest.cursor.is_none());
        let newest = stores.table.query_gsi1(Query::new("SCOPE#t#p", "2026-01-05", 10)).await.unwrap();
        assert_eq!(newest.items.len(), 1);
    }
}

on_both_backends! {
    async fn a_transaction_with_one_failing_condition_writes_nothing(stores) {
        stores.table.put(item("TX", "TAKEN"), Condition::None).await.unwrap();
        stores.table.put(item("TX", "GONE"), Condition::None).await.unwrap();
        let ops = vec![
            WriteOp::Put { item: item("TX", "NEW"), condition: Condition::Absent },
            WriteOp::Delete { key: Key::new("TX", "GONE"), condition: Condition::None },
            WriteOp::Put { item: item("TX", "TAKEN"), condition: Condition::Absent },
        ];
        let r = stores.table.transact(ops).await;
        assert!(matches!(r, Err(StoreError::TransactionConflict { index: 2 })), "{r:?}");
        assert_eq!(stores.table.get(&Key::new("TX", "NEW")).await.unwrap(), None);
        assert!(stores.table.get(&Key::new("TX", "GONE")).await.unwrap().is_some());
    }
}

on_both_backends! {
    async fn a_transaction_whose_conditions_hold_writes_everything(stores) {
        stores.table.put(item("TX", "OLD"), Condition::None).await.unwrap();
        let ops = vec![
            WriteOp::Put { item: item("TX", "A"), condition: Condition::Absent },
            WriteOp::Put { item: item("TX", "B"), condition: Condition::Absent },
            WriteOp::Delete { key: Key::new("TX", "OLD"), condition: Condition::Version(1) },
            WriteOp::Check { key: Key::new("TX", "A2"), condition: Condition::Absent },
        ];
        stores.table.transact(ops).await.unwrap();
        let page = stores.table.query(Query::new("TX", "", 10)).await.unwrap();
        let sks: Vec<_> = page.items.iter().map(|i| i.sk.as_str()).collect();
        assert_eq!(sks, ["A", "B"]);
    }
}

on_both_backends! {
    async fn expired_items_are_invisible_and_can_be_created_again(stores) {
        let past = Timestamp::now().as_second() - 60;
        stores.table.put(item("TTL", "OLD").expiring_at(past).with_gsi1("TTLG", "1"), Condition::None).await.unwrap();
        stores.table.put(item("TTL", "LIVE").expiring_at(past + 7200), Condition::None).await.unwrap();
        assert_eq!(stores.table.get(&Key::new("TTL", "OLD")).await.unwrap(), None);
        let page = stores.table.query(Query::new("TTL", "", 10)).await.unwrap();
        assert_eq!(page.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(), ["LIVE"]);
        assert!(stores.table.query_gsi1(Query::new("TTLG", "", 10)).await.unwrap().items.is_empty());
        assert!(stores.table.get_many(&[Key::new("TTL", "OLD"), Key::new("TTL", "LIVE")]).await.unwrap().len() == 1);
        stores.table.put(item("TTL", "OLD"), Condition::Absent).await.unwrap();
        assert!(stores.table.get(&Key::new("TTL", "OLD")).await.unwrap().is_some());
    }
}

on_both_backends! {
    async fn conditional_delete_refuses_a_moved_version(stores) {
        stores.table.put(item("D", "A"), Condition::None).await.unwrap();
        let r = stores.table.delete(&Key::new("D", "A"), Condition::Version(7)).await;
        assert!(matches!(r, Err(StoreError::ConditionFailed)), "{r:?}");
        stores.table.delete(&Key::new("D", "A"), Condition::Version(1)).await.unwrap();
        assert_eq!(stores.table.get(&Key::new("D", "A")).await.unwrap(), None);
        stores.table.delete(&Key::new("D", "A"), Condition::None).await.unwrap();
    }
}

on_both_backends! {
    async fn get_many_returns_the_items_that_exist(stores) {
        let keys: Vec<Key> = (0..30).map(|i| Key::new("M", format!("K{i:02}"))).collect();
        for key in keys.iter().step_by(2) {
            stores.table.put(item(&key.pk, &key.sk), Condition::None).await.unwrap();
        }
        let got: HashSet<String> = stores.table.get_many(&keys).await.unwrap().into_iter().map(|i| i.sk).collect();
        let expected: HashSet<String> = keys.iter().step_by(2).map(|k| k.sk.clone()).collect();
        assert_eq!(got, expected);
    }
}

on_both_backends! {
    async fn a_cursor_is_refused_by_another_partition(stores) {
        let c = Cursor { pk: "OTHER".into(), sk: "x".into(), gsi1pk: None, gsi1sk: None };
        let r = stores.table.query(Query::new("MINE", "", 5).after(Some(c))).await;
        assert!(matches!(r, Err(StoreError::InvalidCursor)), "{r:?}");
    }
}
