//! The reseller channel: a reseller's customers (sub-accounts with their own
//! quota) and the sales its shop reports, which pass stamps from its pool to
//! a customer once per sale. A reseller sees only its own customers: another
//! reseller's customer is indistinguishable from one that does not exist.

use meterai_core::error::codes;
use meterai_core::quota::Page;
use meterai_core::resellers::{
    Customer, CustomerSummary, CustomerView, ResellerCaller, Sale, SaleOutcome, SaleStatus,
};
use meterai_core::{AccountId, Error, Result};

use crate::ports::{Clock, Customers, SaleRejected};

fn not_found(customer_id: &str) -> Error {
    Error::not_found(
        codes::CUSTOMER_NOT_FOUND,
        format!("no customer {customer_id}"),
    )
}

/// Creates a customer under the reseller; `reference` is the reseller's own
/// id for it (checked at the edge).
pub async fn create_customer(
    customers: &dyn Customers,
    clock: &dyn Clock,
    reseller: &ResellerCaller,
    reference: Option<String>,
) -> Result<CustomerView> {
    let customer = Customer {
        customer_id: format!("cus_{}", meterai_core::ids::nonce()),
        reseller_id: reseller.reseller_id.clone(),
        reference,
        created_ms: clock.now_ms(),
    };
    customers.create(&customer).await?;
    tracing::info!(reseller_id = %reseller.reseller_id, customer_id = %customer.customer_id, "customer created");
    Ok(customer.view(Default::default()))
}

/// The customer if it is this reseller's (404 otherwise).
async fn owned(
    customers: &dyn Customers,
    reseller: &ResellerCaller,
    customer_id: &str,
) -> Result<Customer> {
    if !meterai_core::ids::is_id(customer_id, "cus_") {
        return Err(not_found(customer_id));
    }
    customers
        .load(customer_id)
        .await?
        .filter(|c| c.reseller_id == reseller.reseller_id)
        .ok_or_else(|| not_found(customer_id))
}

/// The quota account of one of the reseller's customers (404 otherwise).
pub async fn customer_of(
    customers: &dyn Customers,
    reseller: &ResellerCaller,
    customer_id: &str,
) -> Result<AccountId> {
    Ok(owned(customers, reseller, customer_id).await?.account())
}

/// One of the reseller's customers, with its quota.
pub async fn get_customer(
    customers: &dyn Customers,
    reseller: &ResellerCaller,
    customer_id: &str,
) -> Result<CustomerView> {
    let customer = owned(customers, reseller, customer_id).await?;
    let quota = customers.balance(&customer.account()).await?;
    Ok(customer.view(quota))
}

/// The reseller's customers, newest first.
pub async fn list_customers(
    customers: &dyn Customers,
    reseller: &ResellerCaller,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<CustomerSummary>> {
    let page = customers.list(&reseller.reseller_id, limit, cursor).await?;
    Ok(Page {
        items: page.items.iter().map(Customer::summary).collect(),
        next_cursor: page.next_cursor,
    })
}

/// Applies a sale the reseller's shop reported (its signature was checked
/// at the edge): the stamps move once per `sale_id`; a repeat answers
/// `duplicate` and changes nothing.
pub async fn apply_sale(
    customers: &dyn Customers,
    reseller: &ResellerCaller,
    sale: &Sale,
) -> Result<SaleOutcome> {
    let customer = customer_of(customers, reseller, &sale.customer_id).await?;
    let status = match customers.sell(&reseller.pool(), &customer, sale).await? {
        Ok(()) => SaleStatus::Applied,
        Err(SaleRejected::AlreadyApplied) => SaleStatus::Duplicate,
        Err(SaleRejected::Insufficient) => {
            return Err(Error::quota_exhausted(
                codes::INSUFFICIENT_QUOTA,
                format!("the pool has fewer than {} available stamps", sale.quantity),
            ))
        }
    };
    tracing::info!(reseller_id = %reseller.reseller_id, sale_id = %sale.sale_id, status = ?status, "sale received");
    Ok(SaleOutcome {
        status,
        sale_id: sale.sale_id.clone(),
        customer_id: sale.customer_id.clone(),
        quantity: sale.quantity,
    })
}
