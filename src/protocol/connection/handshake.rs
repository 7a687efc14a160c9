//! The client's side of the handshake, and the server's accept: phases and their
//! transitions, on the connection (the endpoint's stateless part is `protocol::handshake`).

use std::time::Instant;

use super::{Connection, Ctx};
use crate::protocol::protection::PacketProtection;
use crate::protocol::secure::aead::{ACCEPT_SEQUENCE, RESPONSE_SEQUENCE};
use crate::protocol::secure::conn::SecureSide;
use crate::protocol::secure::hello::RESPONSE_TAG_OFFSET;
use crate::protocol::wire::{WirePacket, MAC_LEN, TOKEN_LEN};
use crate::protocol::{DropReason, Event, Role};

/// Where the handshake stands.
#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    /// Client: sending connection requests.
    Requesting { next_retry: Instant },
    /// Client: echoing the challenge token.
    Responding {
        timestamp: u64,
        token: [u8; TOKEN_LEN],
        next_retry: Instant,
    },
    /// Handshake complete.
    Connected,
}

impl Connection {
    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected)
    }

    /// A client connecting with a connect token.
    pub(crate) fn is_secure_client(&self) -> bool {
        matches!(self.secure, Some(SecureSide::Client(_)))
    }

    /// Still sending connection requests (no challenge yet).
    pub(crate) fn is_requesting(&self) -> bool {
        matches!(self.phase, Phase::Requesting { .. })
    }

    /// Marks the handshake complete (client side) and reports it.
    fn establish(&mut self, now: Instant, cx: &mut Ctx<'_>) {
        self.phase = Phase::Connected;
        self.last_received = now;
        self.last_eliciting_sent = now;
        cx.counters.connections_opened += 1;
        cx.events.push_back(Event::Connected {
            conn: cx.id,
            peer: self.peer,
            role: self.role,
        });
    }

    /// Client: a challenge arrived. The first one moves us on to responding with its token,
    /// and gives the connection its keys; later ones (earned by retried requests) are
    /// duplicates. Returns whether it was new.
    pub(crate) fn on_challenge(
        &mut self,
        now: Instant,
        protocol_id: u32,
        timestamp: u64,
        token: [u8; TOKEN_LEN],
    ) -> bool {
        match self.phase {
            Phase::Requesting { .. } => {
                self.protection = Some(match &self.secure {
                    Some(SecureSide::Client(t)) => PacketProtection::secure(
                        Role::Client,
                        &t.client_to_server_key,
                        &t.server_to_client_key,
                        self.session,
                        timestamp,
                    ),
                    _ => PacketProtection::derive(
                        Role::Client,
                        protocol_id,
                        &token,
                        self.session,
                        timestamp,
                    ),
                });
                self.phase = Phase::Responding {
                    timestamp,
                    token,
                    next_retry: now,
                };
                true
            }
            Phase::Responding { .. } | Phase::Connected => false,
        }
    }

    /// Client: the server accepted. Returns whether it was new (a duplicate otherwise).
    pub(crate) fn on_accept(&mut self, now: Instant, cx: &mut Ctx<'_>) -> Result<bool, DropReason> {
        match self.phase {
            Phase::Responding { .. } => {
                self.establish(now, cx);
                Ok(true)
            }
            Phase::Connected => Ok(false),
            Phase::Requesting { .. } => Err(DropReason::Unexpected),
        }
    }

    /// An authentic connected packet arrived: on a client still responding, it stands for
    /// the lost accept and completes the handshake; before any challenge it is unexpected
    /// (and could not have been authenticated: there are no keys yet).
    pub(crate) fn accept_connected(
        &mut self,
        now: Instant,
        cx: &mut Ctx<'_>,
    ) -> Result<(), DropReason> {
        match self.phase {
            Phase::Connected => Ok(()),
            Phase::Responding { .. } => {
                self.establish(now, cx);
                Ok(())
            }
            Phase::Requesting { .. } => Err(DropReason::Unexpected),
        }
    }

    /// Server: the client's challenge response came again, so our accept was lost.
    pub(crate) fn resend_accept(&mut self) {
        self.send_accept = true;
    }

    /// The handshake packet due at `now`, if any: a retried request or challenge response
    /// (client), or the accept (server). `None` once connected with no accept to send.
    pub(super) fn poll_handshake(
        &mut self,
        now: Instant,
        out: &mut [u8],
        cx: &mut Ctx<'_>,
    ) -> Option<Option<usize>> {
        let id = cx.config.protocol_id;
        let fingerprint = cx.config.message_fingerprint;
        Some(match self.phase {
            Phase::Requesting { next_retry } => {
                if now < next_retry {
                    return Some(None);
                }
                let len = match &self.secure {
                    Some(SecureSide::Client(t)) => {
                        WirePacket::SecureRequest(t.hello(self.session, fingerprint))
                            .encode(id, out)
                    }
                    _ => WirePacket::ConnectionRequest {
                        nonce: self.session,
                        fingerprint,
                    }
                    .encode(id, out),
                }
                .ok();
                self.phase = Phase::Requesting {
                    next_retry: now + cx.config.connect_retry_interval,
                };
                cx.counters.requests_sent += 1;
                len
            }
            Phase::Responding {
                timestamp,
                token,
                next_retry,
            } => {
                if now < next_retry {
                    return Some(None);
                }
                let len = match (&self.secure, &self.protection) {
                    (Some(SecureSide::Client(t)), Some(keys)) => {
                        let hello = t.hello(self.session, fingerprint);
                        let response = WirePacket::SecureResponse {
                            hello,
                            timestamp,
                            token,
                            tag: [0; MAC_LEN],
                        };
                        response.encode(id, out).ok().inspect(|_| {
                            let data = &out[..RESPONSE_TAG_OFFSET];
                            let tag = keys.handshake_tag(true, RESPONSE_SEQUENCE, data);
                            out[RESPONSE_TAG_OFFSET..RESPONSE_TAG_OFFSET + MAC_LEN]
                                .copy_from_slice(&tag.expect("secure keys"));
                        })
                    }
                    _ => WirePacket::ChallengeResponse {
                        nonce: self.session,
                        timestamp,
                        token,
                        fingerprint: cx.config.message_fingerprint,
                    }
                    .encode(id, out)
                    .ok(),
                };
                self.phase = Phase::Responding {
                    timestamp,
                    token,
                    next_retry: now + cx.config.connect_retry_interval,
                };
                cx.counters.responses_sent += 1;
                len
            }
            Phase::Connected if self.send_accept => {
                let nonce = self.session;
                let len = match (&self.secure, &self.protection) {
                    (Some(SecureSide::Server(_)), Some(keys)) => {
                        let accept = WirePacket::SecureAccept {
                            nonce,
                            tag: [0; MAC_LEN],
                        };
                        accept.encode(id, out).ok().inspect(|&len| {
                            let data = &out[..len - MAC_LEN];
                            let tag = keys.handshake_tag(true, ACCEPT_SEQUENCE, data);
                            out[len - MAC_LEN..len].copy_from_slice(&tag.expect("secure keys"));
                        })
                    }
                    _ => WirePacket::Accept { nonce }.encode(id, out).ok(),
                };
                self.send_accept = false;
                cx.counters.handshake_accepts += 1;
                len
            }
            Phase::Connected => return None,
        })
    }
}
