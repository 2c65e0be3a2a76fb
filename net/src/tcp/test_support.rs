//! Helpers of the crate's unit tests that need sockets: an executor to run a test body on,
//! and connected loopback pairs.

use std::future::Future;

use glommio::LocalExecutorBuilder;
use glommio::net::{TcpListener, TcpStream};

/// Runs `f`'s future on a fresh glommio executor and waits for it; a panic inside fails
/// the test.
pub(crate) fn on_executor<F: Future<Output = ()> + 'static>(
    f: impl FnOnce() -> F + Send + 'static,
) {
    LocalExecutorBuilder::default()
        .spawn(move || async move { f().await })
        .expect("executor")
        .join()
        .expect("test body");
}

/// A connected (client, server) pair through `listener`.
pub(crate) async fn pair_on(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let server = listener.accept().await.unwrap();
    (client, server)
}

/// A connected (client, server) pair through a listener of its own on 127.0.0.1.
pub(crate) async fn pair() -> (TcpStream, TcpStream) {
    pair_on(&TcpListener::bind("127.0.0.1:0").unwrap()).await
}
