//! The state every HTTP handler shares: the engine, the settings, the staff tokens and what the
//! enterprise pages need (measure defaults, the link key, the notifier's roster).

use std::sync::Arc;

use crate::config::Settings;
use crate::engine::Engine;
use crate::store::RecordBody;
use crate::store::events::{Event, FileDigests, NotifyReloaded};
use crate::web::api::Staff;

/// What every task and handler shares.
pub struct AppState {
    /// The operations (shared with the workers).
    pub engine: Arc<Engine>,
    /// The settings it runs with.
    pub settings: Settings,
    /// Whether an accepted forecast triggers a consultation at once.
    pub consult_on_forecast: bool,
    /// Measure defaults: industry × grade × level, deadlines, department duties.
    pub defaults: Arc<crate::registry::Defaults>,
    /// The acknowledgement token secret.
    pub tokens: crate::engine::assign::TokenKey,
    /// Where the link keys and the dashboard's session key live (the data folder, or the shared store).
    pub keys: crate::engine::link_keys::KeyHome,
    /// The notifier's stage: its roster and templates are reloaded with the playbooks.
    pub notify: Arc<crate::notify::NotifyStage>,
    /// The page templates in service (dashboard, public, acknowledgement), replaced by a reload.
    pub pages: crate::templates::Live<crate::web::Pages>,
    /// The staff tokens now: those of the configuration file, the environment and
    /// `staff.tokens_file`, all of which a reload reads again.
    pub staff: std::sync::RwLock<Vec<crate::config::StaffToken>>,
    /// The dashboard's session keys in service (the newest signs its forms), read again on reload.
    pub session_keys: crate::web::dashboard::SessionKeyCell,
}

impl AppState {
    /// Asks the scheduler for a consultation now.
    pub fn trigger_consultation(&self) {
        self.engine.trigger_consultation();
    }

    /// Tells followers that state changed.
    pub fn after_change(&self) {
        self.engine.after_change();
    }

    /// The staff member whose token hashes to `sha256`.
    pub fn staff_for(&self, sha256: &str) -> Option<Staff> {
        let tokens = self.staff.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.iter().find(|t| t.sha256 == sha256).map(|t| Staff {
            name: t.name.clone(),
            role: t.role.clone(),
        })
    }

    /// The staff tokens a reload would put live: the configuration file, the environment and the
    /// tokens file read again ([`crate::config::Settings::staff_tokens_again`]); an error names the
    /// file and line.
    fn reread_staff(&self) -> Result<Vec<crate::config::StaffToken>, String> {
        self.settings.staff_tokens_again().map_err(|e| format!("{e:#}"))
    }

    /// Reloads the playbooks folder, the duty roster, the message templates, the staff tokens and the
    /// acknowledgement-link keys, all or nothing: on any error the old ones all stay live and
    /// the errors (each naming its file and line) are returned. Recorded either way; a roster or templates that changed are
    /// recorded too (`notify_reloaded`).
    pub async fn reload_playbooks(&self, actor: &str) -> Result<Vec<String>, Vec<String>> {
        let now = self.engine.clock.now();
        let regions = self.engine.regions;
        let playbooks = crate::domain::playbook::load_paths(std::slice::from_ref(&self.settings.playbooks), regions)
            .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<String>>());
        let files = crate::notify::Files::load(&self.settings, regions);
        let staff = self.reread_staff().map_err(|e| vec![e]);
        let pages = crate::web::Pages::load(&self.settings.playbooks);
        let keys = self.keys.read().map_err(|e| format!("{e:#}"));
        let session = self.keys.session_keys().map_err(|e| format!("{e:#}"));
        let keys = match (keys, session) {
            (Ok(k), Ok(s)) => Ok((k, s)),
            (k, s) => Err(k.err().into_iter().chain(s.err()).collect::<Vec<String>>()),
        };
        let (versions, errors, notify) = match (playbooks, files, staff, pages, keys) {
            (Ok(set), Ok(files), Ok(staff), Ok(pages), Ok((keys, session))) => {
                let ids = keys.ids();
                if self.tokens.replace(keys) {
                    tracing::info!(
                        keys = crate::logs::list(&ids),
                        signing = ids.last().map(String::as_str),
                        "acknowledgement-link keys reloaded"
                    );
                }
                {
                    let mut live = self.session_keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *live != session {
                        let ids = session.ids();
                        tracing::info!(
                            keys = crate::logs::list(&ids),
                            signing = ids.last().map(String::as_str),
                            "dashboard session keys reloaded"
                        );
                        *live = session;
                    }
                }
                {
                    let mut live = self.staff.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *live != staff {
                        tracing::info!(tokens = staff.len(), before = live.len(), "staff tokens reloaded");
                    }
                    *live = staff;
                }
                let reloaded = NotifyReloaded {
                    digests: FileDigests {
                        roster: files.roster.digest().to_string(),
                        templates: files.templates.digest().to_string(),
                    },
                    files: files.summary(&self.settings),
                };
                self.engine.playbooks.swap(set, now);
                self.pages.set(pages);
                let changed = self.notify.replace(files);
                (self.engine.playbooks.status().versions, Vec::new(), changed.then_some(reloaded))
            }
            (playbooks, files, staff, pages, keys) => {
                let errors: Vec<String> = playbooks
                    .err()
                    .unwrap_or_default()
                    .into_iter()
                    .chain(files.err().unwrap_or_default())
                    .chain(staff.err().unwrap_or_default())
                    .chain(pages.err().unwrap_or_default())
                    .chain(keys.err().unwrap_or_default())
                    .collect();
                self.engine.playbooks.refused(now, errors.clone());
                (self.engine.playbooks.status().versions, errors, None)
            }
        };
        let body = RecordBody::PlaybooksReloaded {
            versions: versions.clone(),
            errors: errors.clone(),
        };
        let who = actor.to_string();
        let notified = notify.clone();
        let recorded = self
            .engine
            .store
            .write::<_, crate::store::StoreError, _>(move |tx| {
                tx.append(now, &who, None, body)?;
                if let Some(reloaded) = notified {
                    tx.append(now, &who, None, RecordBody::Other(Event::NotifyReloaded(reloaded)))?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record the reload");
        }
        if !errors.is_empty() {
            tracing::warn!(
                actor,
                action = "reload",
                errors = crate::logs::list(&errors),
                "reload refused; the old playbooks, roster, templates, staff tokens and link keys stay live"
            );
            return Err(errors);
        }
        if let Err(e) = self.engine.remember_playbooks().await {
            tracing::error!(error = %e, "could not keep the sources of the new playbook versions");
        }
        match notify {
            Some(n) => tracing::info!(
                actor,
                action = "reload",
                versions = crate::logs::list(&versions),
                notify = crate::logs::json(&n),
                "playbooks reloaded; new roster or templates live"
            ),
            None => tracing::info!(
                actor,
                action = "reload",
                versions = crate::logs::list(&versions),
                "playbooks reloaded; roster and templates unchanged"
            ),
        }
        Ok(versions)
    }
}
