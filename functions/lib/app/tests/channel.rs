//! The reseller channel on the in-memory ports: customers seen only by their
//! reseller, sales applied once whatever the shop repeats, a pool never
//! overdrawn by sales and stamps at once, and stamping paid by the right
//! account.

mod common;

use futures::future::join_all;
use meterai_app::ports::Documents;
use meterai_app::resellers::{self, apply_sale, create_customer};
use meterai_app::stamping::{self, StampPorts, StampRequest};
use meterai_core::error::codes;
use meterai_core::jobs::Placement;
use meterai_core::quota::Balance;
use meterai_core::resellers::{Caller, ResellerCaller, Sale, SaleStatus};
use meterai_core::AccountId;
use meterai_memory::{
    ManualClock, MemoryCustomers, MemoryDocuments, MemoryJobs, MemoryOutbox, MemoryQueue, Store,
};
use meterai_pdf::stamp::pdf::sample_pdf;

struct World {
    store: Store,
    customers: MemoryCustomers,
    jobs: MemoryJobs,
    queue: MemoryQueue,
    documents: MemoryDocuments,
    outbox: MemoryOutbox,
    clock: ManualClock,
}

impl World {
    fn new() -> Self {
        let store = Store::new();
        Self {
            customers: store.customers(),
            jobs: store.jobs(),
            store,
            queue: MemoryQueue::default(),
            documents: MemoryDocuments::default(),
            outbox: MemoryOutbox::default(),
            clock: ManualClock::at(1_795_400_000_000),
        }
    }

    async fn credit(&self, account: &AccountId, quantity: i64) {
        common::credit(&self.store, account, quantity).await;
    }

    async fn customer(&self, reseller: &ResellerCaller) -> String {
        create_customer(&self.customers, &self.clock, reseller, None)
            .await
            .unwrap()
            .customer_id
    }

    fn ports(&self) -> StampPorts<'_> {
        StampPorts {
            jobs: &self.jobs,
            queue: &self.queue,
            documents: &self.documents,
            outbox: &self.outbox,
            clock: &self.clock,
        }
    }
}

fn reseller(id: &str) -> ResellerCaller {
    ResellerCaller {
        reseller_id: id.into(),
        name: format!("Toko {id}"),
    }
}

fn sale(id: &str, customer_id: &str, quantity: i64) -> Sale {
    Sale {
        sale_id: id.into(),
        customer_id: customer_id.into(),
        quantity,
    }
}

#[tokio::test]
async fn a_reseller_sees_and_sells_to_its_own_customers_only() {
    let w = World::new();
    let (mine, theirs) = (reseller("rsl_a"), reseller("rsl_b"));
    let created = create_customer(&w.customers, &w.clock, &mine, Some("shop-17".into()))
        .await
        .unwrap();
    let their_customer = w.customer(&theirs).await;
    w.credit(&mine.pool(), 5).await;

    let view = resellers::get_customer(&w.customers, &mine, &created.customer_id)
        .await
        .unwrap();
    assert_eq!(view.reference.as_deref(), Some("shop-17"));
    assert_eq!(view.quota, Balance::default());

    for id in [their_customer.as_str(), "cus_nope", "../CUSTOMER#x", ""] {
        let err = resellers::get_customer(&w.customers, &mine, id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::CUSTOMER_NOT_FOUND, "{id}");
        let err = apply_sale(&w.customers, &mine, &sale("S-x", id, 1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::CUSTOMER_NOT_FOUND, "{id}");
    }
    let listed = resellers::list_customers(&w.customers, &mine, 10, None)
        .await
        .unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|c| c.customer_id.as_str())
            .collect::<Vec<_>>(),
        [created.customer_id.as_str()]
    );
    // Nothing moved out of the pool for the refused sales.
    assert_eq!(w.store.balance(&mine.pool()).await.available, 5);
}

#[tokio::test]
async fn a_sale_repeated_or_raced_moves_stamps_once() {
    let w = World::new();
    let shop = reseller("rsl_a");
    let customer = w.customer(&shop).await;
    w.credit(&shop.pool(), 10).await;

    let repeated = sale("S-1", &customer, 4);
    let outcomes = join_all((0..10).map(|_| apply_sale(&w.customers, &shop, &repeated))).await;
    let statuses: Vec<SaleStatus> = outcomes.into_iter().map(|o| o.unwrap().status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == SaleStatus::Applied)
            .count(),
        1,
        "{statuses:?}"
    );
    let pool = w.store.balance(&shop.pool()).await;
    assert_eq!((pool.available, pool.sold), (6, 4));
    let account = meterai_core::resellers::customer_account(&customer);
    assert_eq!(w.store.balance(&account).await.available, 4);

    // More than the pool holds: refused, nothing moves.
    let err = apply_sale(&w.customers, &shop, &sale("S-2", &customer, 7))
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::INSUFFICIENT_QUOTA);
    // The pool is then emptied; a repeat of the first sale is still just a repeat.
    apply_sale(&w.customers, &shop, &sale("S-3", &customer, 6))
        .await
        .unwrap();
    let again = apply_sale(&w.customers, &shop, &sale("S-1", &customer, 4))
        .await
        .unwrap();
    assert_eq!(again.status, SaleStatus::Duplicate);
    assert_eq!(w.store.balance(&account).await.available, 10);
    for account in [shop.pool(), account] {
        let report = w.store.audit(&account).await;
        assert!(report.problems.is_empty(), "{report:?}");
    }
}

#[tokio::test]
async fn sales_and_stamps_racing_on_one_pool_never_overdraw_it() {
    let w = World::new();
    let shop = reseller("rsl_a");
    let customer = w.customer(&shop).await;
    w.credit(&shop.pool(), 5).await;
    let caller = Caller::Reseller(shop.clone());
    let actor = stamping::actor(&w.customers, &caller, None).await.unwrap();
    assert_eq!(actor.payer, shop.pool());
    let requests: Vec<StampRequest> = (0..5)
        .map(|_| {
            let document_id = format!("doc_{}", meterai_core::ids::nonce());
            let key = w.documents.upload_key(&shop.pool(), &document_id);
            w.documents.put(&key, sample_pdf(1, [0, 0, 595, 842], None));
            StampRequest {
                document_id,
                placement: Placement {
                    page: 1,
                    x: 10.0,
                    y: 10.0,
                    width: 100.0,
                    height: 100.0,
                },
                reason: None,
                client_reference: None,
                customer_id: None,
            }
        })
        .collect();
    let settings = common::settings();
    let ports = w.ports();
    let stamps = join_all(
        requests
            .iter()
            .map(|r| stamping::accept(&ports, &settings, &actor, r, &r.document_id)),
    );
    let sold_sales: Vec<Sale> = (0..5)
        .map(|i| sale(&format!("S-{i}"), &customer, 1))
        .collect();
    let sales = join_all(
        sold_sales
            .iter()
            .map(|s| apply_sale(&w.customers, &shop, s)),
    );
    let (stamps, sales) = tokio::join!(stamps, sales);
    let accepted = stamps.iter().filter(|r| r.is_ok()).count() as i64;
    let sold = sales.iter().filter(|r| r.is_ok()).count() as i64;
    assert_eq!(accepted + sold, 5, "every stamp of the pool went once");
    let pool = w.store.balance(&shop.pool()).await;
    assert_eq!(
        (pool.available, pool.reserved, pool.sold),
        (0, accepted, sold)
    );
    let report = w.store.audit(&shop.pool()).await;
    assert!(report.problems.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_stamp_for_a_customer_is_paid_by_that_customer_and_only_its_reseller_may_ask() {
    let w = World::new();
    let (shop, other) = (reseller("rsl_a"), reseller("rsl_b"));
    let customer = w.customer(&shop).await;
    let as_shop = Caller::Reseller(shop.clone());
    let actor = stamping::actor(&w.customers, &as_shop, Some(&customer))
        .await
        .unwrap();
    assert_eq!(
        actor.payer,
        meterai_core::resellers::customer_account(&customer)
    );
    assert_eq!(
        actor.owner,
        shop.pool(),
        "the reseller sees its customer's jobs"
    );
    assert_eq!(actor.reseller_id.as_deref(), Some("rsl_a"));

    let as_other = Caller::Reseller(other);
    let as_portal = Caller::Portal(AccountId::parse("user-1").unwrap());
    for caller in [&as_other, &as_portal] {
        let err = stamping::actor(&w.customers, caller, Some(&customer))
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::CUSTOMER_NOT_FOUND);
    }
    let portal = stamping::actor(&w.customers, &as_portal, None)
        .await
        .unwrap();
    assert_eq!(
        (portal.channel.as_str(), portal.reseller_id),
        ("portal", None)
    );
    // A customer listing pages newest first, through its cursor.
    for _ in 0..4 {
        w.clock.advance(1_000);
        w.customer(&shop).await;
    }
    let first = resellers::list_customers(&w.customers, &shop, 3, None)
        .await
        .unwrap();
    let rest = resellers::list_customers(&w.customers, &shop, 3, first.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!((first.items.len(), rest.items.len()), (3, 2));
    assert_eq!(rest.items.last().unwrap().customer_id, customer);
    assert!(rest.next_cursor.is_none());
}
