//! The webhook deliverer: subscribed to the webhooks queue, signs and POSTs
//! each event to its reseller's endpoint, reports partial batch failures so a
//! failed delivery comes back later (jittered exponential backoff) and, after
//! the last try, lands in the webhooks dead-letter queue.

fn main() -> Result<(), lambda_runtime::Error> {
    meterai::lambda::serve_queue(meterai::routes::webhooks::FUNCTION)
}
