//! On the table's stream: accounts whose balance changed are audited.

fn main() -> Result<(), lambda_runtime::Error> {
    meterai::lambda::serve_scheduled(meterai::routes::audit::FUNCTION)
}
