//! renet 2 over its UDP transport, `renet_netcode` (`NetcodeServerTransport` /
//! `NetcodeClientTransport` over a std `UdpSocket`, `ServerAuthentication::Unsecure`), with
//! `ConnectionConfig::default()` and messages on `DefaultChannel::Unreliable`. renet's loop is
//! the application's: `update`, the transport's `update`, read, write, `send_packets`. Its
//! docs run it at 60 Hz; we loop it with no sleep, as a user wanting speed would, yielding
//! the core after a turn that found nothing. renet packs
//! several messages into one datagram, so its figures count messages, the unit its
//! application sees.

use super::rounds::Sample;
use super::span::{self, Flags};
use renet::{ClientId, ConnectionConfig, DefaultChannel, RenetClient, RenetServer};
use renet_netcode::{
    ClientAuthentication, NetcodeClientTransport, NetcodeServerTransport, ServerAuthentication,
    ServerConfig,
};
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const PROTOCOL_ID: u64 = 7;
/// Messages queued per client turn while blasting: 32 of 1,200 B stay inside renet's default
/// budget of 60,000 bytes per tick.
const SEND_BATCH: usize = 32;

struct Server {
    server: RenetServer,
    transport: NetcodeServerTransport,
    last: Instant,
}

struct Client {
    client: RenetClient,
    transport: NetcodeClientTransport,
    last: Instant,
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

impl Server {
    fn new() -> Result<(Server, SocketAddr), String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("renet bind: {e}"))?;
        let addr = socket.local_addr().map_err(|e| e.to_string())?;
        let config = ServerConfig {
            current_time: since_epoch(),
            max_clients: 64,
            protocol_id: PROTOCOL_ID,
            public_addresses: vec![addr],
            authentication: ServerAuthentication::Unsecure,
        };
        let transport = NetcodeServerTransport::new(config, socket)
            .map_err(|e| format!("renet server: {e}"))?;
        let server = RenetServer::new(ConnectionConfig::default());
        Ok((
            Server {
                server,
                transport,
                last: Instant::now(),
            },
            addr,
        ))
    }

    /// One turn: advance time, read datagrams, hand every message to `each`, send.
    fn turn(
        &mut self,
        mut each: impl FnMut(&mut RenetServer, ClientId, &[u8]),
    ) -> Result<(), String> {
        let now = Instant::now();
        let delta = now - self.last;
        self.last = now;
        self.server.update(delta);
        self.transport
            .update(delta, &mut self.server)
            .map_err(|e| format!("renet server: {e}"))?;
        for id in self.server.clients_id() {
            while let Some(message) = self.server.receive_message(id, DefaultChannel::Unreliable) {
                each(&mut self.server, id, &message);
            }
        }
        self.transport.send_packets(&mut self.server);
        Ok(())
    }
}

impl Client {
    fn new(server_addr: SocketAddr) -> Result<Client, String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("renet bind: {e}"))?;
        let authentication = ClientAuthentication::Unsecure {
            protocol_id: PROTOCOL_ID,
            client_id: 1,
            server_addr,
            user_data: None,
        };
        let transport = NetcodeClientTransport::new(since_epoch(), authentication, socket)
            .map_err(|e| format!("renet client: {e}"))?;
        Ok(Client {
            client: RenetClient::new(ConnectionConfig::default()),
            transport,
            last: Instant::now(),
        })
    }

    /// One turn: advance time, read datagrams, hand every message to `each`, send.
    fn turn(&mut self, mut each: impl FnMut(&[u8])) -> Result<(), String> {
        let now = Instant::now();
        let delta = now - self.last;
        self.last = now;
        self.client.update(delta);
        self.transport
            .update(delta, &mut self.client)
            .map_err(|e| format!("renet client: {e}"))?;
        while let Some(message) = self.client.receive_message(DefaultChannel::Unreliable) {
            each(&message);
        }
        self.transport
            .send_packets(&mut self.client)
            .map_err(|e| format!("renet client: {e}"))
    }
}

/// A server and a connected client, their handshake driven to the end.
fn pair() -> Result<(Server, Client), String> {
    let (mut server, addr) = Server::new()?;
    let mut client = Client::new(addr)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(client.client.is_connected() && server.server.connected_clients() == 1) {
        if Instant::now() > deadline {
            return Err("renet: the netcode handshake did not finish in 5 s".into());
        }
        client.turn(|_| {})?;
        server.turn(|_, _, _| {})?;
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((server, client))
}

pub fn one_way(size: usize, span: Duration) -> Result<Sample, String> {
    let (mut server, mut client) = pair()?;
    span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0xab; size];
            while flags.sending() {
                for _ in 0..SEND_BATCH {
                    client
                        .client
                        .send_message(DefaultChannel::Unreliable, payload.clone());
                }
                client.turn(|_| {})?;
                flags.sent(SEND_BATCH as u64);
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| {
            while flags.receiving() {
                let mut n = 0;
                server.turn(|_, _, _| n += 1)?;
                flags.delivered(n);
                if n == 0 {
                    thread::yield_now();
                }
            }
            Ok(())
        }),
    )
}

pub fn ping_pong(size: usize, span: Duration) -> Result<Sample, String> {
    let (mut server, mut client) = pair()?;
    span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0x11; size];
            while flags.sending() {
                client
                    .client
                    .send_message(DefaultChannel::Unreliable, payload.clone());
                flags.sent(1);
                let deadline = Instant::now() + Duration::from_millis(200);
                let mut echoed = 0;
                while echoed == 0 && Instant::now() < deadline {
                    client.turn(|_| echoed += 1)?;
                    if echoed == 0 {
                        thread::yield_now();
                    }
                }
                flags.delivered(echoed.min(1));
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| {
            while flags.receiving() {
                let mut n = 0;
                server.turn(|server, id, message| {
                    server.send_message(id, DefaultChannel::Unreliable, message.to_vec());
                    n += 1;
                })?;
                if n == 0 {
                    thread::yield_now();
                }
            }
            Ok(())
        }),
    )
}
