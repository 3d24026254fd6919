rustler::atoms! {
    ok,
    nil,
    item,
    done,
    error,
    pending,
    kind,
    message,
    retryable,
    status,
    path,
}
