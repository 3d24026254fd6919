//! DynamoDB over aws-sdk-dynamodb: clients built once per configuration ([`client`]), errors
//! mapped to ours ([`error`]), one async function per operation ([`ops`]), and
//! scans and queries as pull streams ([`stream`]).

pub mod attempts;
pub mod client;
pub mod error;
pub mod ops;
pub mod statement;
pub mod stream;

pub use aws_sdk_dynamodb::types::AttributeValue;

/// An item, or a key: attribute names to values.
pub type Item = std::collections::HashMap<String, AttributeValue>;
