//! `regard serve`: the HTTP server on the embedded store, with graceful shutdown.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use regard_server::content::ContentService;
use regard_server::{router, AppState, Keys};
use regard_store::{Engine, EngineConfig};

use crate::config::{load_or_create_keys, ServerArgs, StoreArgs};

/// Opens the engine, logging replay progress on large stores.
pub fn open_engine(config: EngineConfig) -> anyhow::Result<Arc<Engine>> {
    let dir = config.data_dir.clone();
    let started = std::time::Instant::now();
    let engine = Engine::open(config, &mut |n| {
        if n > 0 {
            tracing::info!(events = n, "rebuilding live state");
        }
    })
    .with_context(|| format!("opening the store in {}", dir.display()))?;
    let stats = engine.replay_stats();
    tracing::info!(
        events = stats.events,
        profiles = engine.state().profile_count(),
        products = stats.products,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store open"
    );
    Ok(Arc::new(engine))
}

/// `regard serve`.
pub fn run(store: StoreArgs, server: ServerArgs) -> anyhow::Result<()> {
    let config = store.common.engine_config(&store.data)?;
    let keys = load_or_create_keys(&store.data)?;
    let engine = open_engine(config)?;
    serve_engine(engine, keys, &server)
}

/// Opens the content store (slots, settings, decision log) beside the event store.
pub fn open_content(
    data_dir: &std::path::Path,
    policy: Arc<regard_core::segments::PolicyConfig>,
) -> anyhow::Result<Arc<ContentService>> {
    Ok(Arc::new(
        ContentService::open(data_dir, policy)
            .with_context(|| format!("opening the content store in {}", data_dir.display()))?,
    ))
}

/// Serves `engine` on `listen` until SIGTERM or ctrl-c, then lets the writer commit
/// everything it acknowledged (it only acknowledges after committing) and stops.
pub fn serve_engine(engine: Arc<Engine>, keys: Keys, server: &ServerArgs) -> anyhow::Result<()> {
    let listen = server.listen.as_str();
    let content = open_content(&engine.config().data_dir, engine.config().live.policy.clone())?;
    let mut state = AppState::new(Arc::clone(&engine), keys, content.clone());
    state.geo = Arc::new(server.geo_resolver()?);
    state.demo_shop = server.demo_shop;
    state.demo_user = server.demo_user.clone().filter(|_| server.demo_shop);
    start_recs_training(&state, server.recs_retrain_minutes);
    regard_server::predict::start_worker(&state, server.predict_refit_minutes);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("regard-http").build()?;
    let result: anyhow::Result<()> = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
        let address = listener.local_addr()?;
        println!("Regard is listening on http://{address}");
        let _ = std::io::stdout().flush();
        tracing::info!(%address, "listening");
        let app = router(state);
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?;
        Ok(())
    });
    tracing::info!("shutting down: committing what is queued");
    engine.shutdown();
    content.store.shutdown();
    drop(runtime);
    result
}

/// Trains the recommendation model in the background now (queries answer 503 until the first
/// model is ready) and again every `minutes` (0: only at start-up).
fn start_recs_training(state: &AppState, minutes: u64) {
    let (recs, engine, clock) = (state.recs.clone(), state.engine.clone(), state.clock.clone());
    let spawned = std::thread::Builder::new().name("regard-recs-train".to_owned()).spawn(move || loop {
        match recs.train(&engine, regard_recs::RecsConfig::default(), clock.now_ms()) {
            Ok(report) => tracing::info!(
                interactions = report.interactions,
                users = report.users,
                items = report.items,
                train_seconds = report.train_seconds,
                "recommendation model trained"
            ),
            Err(error) => tracing::info!(%error, "no recommendation model yet"),
        }
        if minutes == 0 || !engine.is_healthy() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_secs(minutes * 60));
    });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start recommendation training");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
