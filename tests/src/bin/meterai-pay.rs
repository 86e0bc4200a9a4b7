//! Local payment shortcut: tells the Midtrans simulator that the order's
//! transaction is now `transaction-status` and sends its correctly signed
//! notification to the deployed API, as the gateway would after the buyer
//! paid. (The simulator's payment page does the same with a click.)
//!
//!     target/release/meterai-pay <order-id> <gross-amount> [transaction-status]
//!
//! transaction-status defaults to `settlement`; `pending`, `expire`, `cancel`,
//! `deny` and `capture` work too. Prints the API's answer.

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (order_id, amount) = match (
        args.first(),
        args.get(1).and_then(|a| a.parse::<i64>().ok()),
    ) {
        (Some(order), Some(amount)) => (order.clone(), amount),
        _ => {
            eprintln!("usage: meterai-pay <order-id> <gross-amount> [transaction-status]");
            std::process::exit(2);
        }
    };
    let status = args.get(2).map(String::as_str).unwrap_or("settlement");
    let stack = e2e::Stack::load();
    let order = serde_json::json!({ "order_id": order_id, "total": amount });
    let answer = e2e::notify(&stack, &e2e::payment(&stack, &order, status).await).await;
    println!("{} {}", answer.status, answer.body);
    if answer.status >= 300 {
        std::process::exit(1);
    }
}
