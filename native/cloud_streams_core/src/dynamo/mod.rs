//! DynamoDB over aws-sdk-dynamodb: clients built once per configuration ([`client`]), errors
//! mapped to ours ([`error`]), and one async function per operation ([`ops`]).

pub mod client;
pub mod error;
pub mod ops;

pub use aws_sdk_dynamodb::types::AttributeValue;

/// An item, or a key: attribute names to values.
pub type Item = std::collections::HashMap<String, AttributeValue>;
