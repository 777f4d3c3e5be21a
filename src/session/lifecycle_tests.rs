//! Event sequences against the actions they produce, without an actor.

use bytes::Bytes;

use super::Action::*;
use super::*;
use crate::protocol::{Properties, QoS};
use crate::topic::TopicName;

const SHUTTING_DOWN: ReasonCode = ReasonCode::SERVER_SHUTTING_DOWN;
const TAKEN_OVER: ReasonCode = ReasonCode::SESSION_TAKEN_OVER;

/// One event of a table row.
#[derive(Debug, Clone, Copy)]
enum Event {
    Close(Close),
    AcksSettled,
    WriterClosed,
    WillDue,
    Expired,
    Crash,
    TakeOver { handover: bool },
    Shutdown,
    Idle,
    Refuse,
}

/// A row: the event, whether acknowledgements and routes are pending, and the
/// actions expected.
type Step = (Event, bool, bool, Vec<Action>);

fn will(delay: Option<u32>) -> Box<LastWill> {
    let mut properties = Properties::default();
    if delay.is_some() {
        properties.will_delay_interval = delay;
    }
    Box::new(LastWill {
        topic: TopicName::new("will").unwrap(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties,
    })
}

/// A live 5.0 connection with this will.
fn live(will: Option<Box<LastWill>>) -> Lifecycle {
    let mut life = Lifecycle::connecting(will);
    life.opened();
    life.resumed();
    life
}

fn facts(expiry: u32, acks_pending: bool, routing: bool) -> Facts {
    Facts {
        acks_pending,
        routing,
        v5: true,
        expiry,
    }
}

/// Runs the rows in order, checking each row's actions.
fn run(life: &mut Lifecycle, expiry: u32, steps: Vec<Step>) {
    for (i, (event, acks, routing, expected)) in steps.into_iter().enumerate() {
        let f = facts(expiry, acks, routing);
        let got = match event {
            Event::Close(how) => life.close(how, f),
            Event::AcksSettled => life.acks_settled(f),
            Event::WriterClosed => life.writer_closed(f),
            Event::WillDue => life.will_due(),
            Event::Expired => life.end(f),
            Event::Crash => life.crash(f),
            Event::TakeOver { handover } => life.take_over(handover, f),
            Event::Shutdown => life.shutdown(f),
            Event::Idle => life.idle(f),
            Event::Refuse => life.refuse(f),
        };
        assert_eq!(got, expected, "step {i}: {event:?}");
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn a_normal_disconnect_of_a_clean_session_ends_it_without_the_will() {
    let mut life = live(Some(will(None)));
    let bye = Close::ClientDisconnect { send_will: false };
    run(
        &mut life,
        0,
        vec![
            (
                Event::Close(bye),
                false,
                false,
                vec![CloseWriter, GoneOffline, EndSession, Linger],
            ),
            (Event::WriterClosed, false, false, vec![DropLink, Stop]),
        ],
    );
    assert_eq!(life.phase(), Phase::Gone);
}

#[test]
fn a_lost_persistent_connection_publishes_the_will_and_waits_for_expiry() {
    let mut life = live(Some(will(None)));
    let expected = vec![
        CloseWriter,
        PublishWill(will(None)),
        GoneOffline,
        DropQueuedQos0,
        ScheduleExpiry(secs(60)),
    ];
    run(
        &mut life,
        60,
        vec![
            (Event::Close(Close::Lost), false, false, expected),
            (Event::WriterClosed, false, false, vec![DropLink]),
            (Event::Expired, false, false, vec![EndSession, Stop]),
        ],
    );
}

#[test]
fn the_will_delay_runs_before_the_expiry_when_shorter() {
    let mut life = live(Some(will(Some(30))));
    let closed = vec![
        CloseWriter,
        DelayWill(secs(30)),
        GoneOffline,
        DropQueuedQos0,
        ScheduleExpiry(secs(60)),
    ];
    let mut steps = vec![(Event::Close(Close::Lost), false, false, closed)];
    steps.push((Event::WriterClosed, false, false, vec![DropLink]));
    steps.push((
        Event::WillDue,
        false,
        false,
        vec![CancelWillTimer, PublishWill(will(Some(30)))],
    ));
    // The will went out already: expiry only ends the session.
    steps.push((Event::Expired, false, false, vec![EndSession, Stop]));
    run(&mut life, 60, steps);
}

#[test]
fn the_session_expiry_cuts_a_longer_will_delay_short() {
    let mut life = live(Some(will(Some(120))));
    let closed = vec![
        CloseWriter,
        DelayWill(secs(60)),
        GoneOffline,
        DropQueuedQos0,
        ScheduleExpiry(secs(60)),
    ];
    let ended = vec![
        CancelWillTimer,
        PublishWill(will(Some(120))),
        EndSession,
        Stop,
    ];
    run(
        &mut life,
        60,
        vec![
            (Event::Close(Close::Lost), false, false, closed),
            (Event::WriterClosed, false, false, vec![DropLink]),
            (Event::Expired, false, false, ended),
        ],
    );
}

#[test]
fn a_delayed_will_is_in_the_stored_record_while_it_waits() {
    let mut life = live(Some(will(Some(30))));
    assert_eq!(life.stored_will(), Some(&*will(Some(30))));
    life.close(Close::Lost, facts(60, false, false));
    assert_eq!(life.stored_will(), Some(&*will(Some(30))));
    life.will_due();
    assert_eq!(life.stored_will(), None);
}

#[test]
fn a_delayed_will_goes_at_once_without_session_expiry() {
    let mut life = live(Some(will(Some(30))));
    let expected = vec![
        CloseWriter,
        PublishWill(will(Some(30))),
        GoneOffline,
        EndSession,
        Linger,
    ];
    run(
        &mut life,
        0,
        vec![(Event::Close(Close::Lost), false, false, expected)],
    );
}

#[test]
fn a_server_close_waits_for_pending_acks_then_disconnects() {
    let mut life = live(None);
    let first = Close::Server(ReasonCode::KEEP_ALIVE_TIMEOUT);
    let closed = vec![
        SendDisconnect(ReasonCode::KEEP_ALIVE_TIMEOUT),
        CloseWriter,
        GoneOffline,
        DropQueuedQos0,
        ScheduleExpiry(secs(10)),
    ];
    run(
        &mut life,
        10,
        vec![
            (Event::Close(first), true, true, vec![StopReading]),
            // A second reason does not replace the first.
            (Event::Shutdown, true, true, vec![StopReading]),
            (Event::AcksSettled, true, true, vec![]),
            (Event::AcksSettled, false, false, closed),
            (Event::Close(Close::Lost), false, false, vec![]),
        ],
    );
}

#[test]
fn a_client_disconnect_does_not_wait_for_pending_acks() {
    let mut life = live(None);
    let bye = Close::ClientDisconnect { send_will: true };
    let expected = vec![CloseWriter, GoneOffline, DropQueuedQos0];
    run(
        &mut life,
        NEVER_EXPIRES,
        vec![(Event::Close(bye), true, true, expected)],
    );
}

#[test]
fn a_gone_session_stops_only_once_its_routes_are_answered() {
    let mut life = live(None);
    run(
        &mut life,
        0,
        vec![
            (
                Event::Close(Close::Lost),
                false,
                true,
                vec![CloseWriter, GoneOffline, EndSession, Linger],
            ),
            (Event::WriterClosed, false, true, vec![DropLink]),
            (Event::AcksSettled, false, true, vec![]),
            (Event::Idle, false, false, vec![Stop]),
        ],
    );
}

#[test]
fn a_failed_socket_closes_the_live_connection() {
    let mut life = live(Some(will(None)));
    let expected = vec![
        CloseWriter,
        PublishWill(will(None)),
        GoneOffline,
        EndSession,
        Linger,
        DropLink,
        Stop,
    ];
    run(
        &mut life,
        0,
        vec![(Event::WriterClosed, false, false, expected)],
    );
}

#[test]
fn takeover_hands_the_state_over_and_publishes_only_an_undelayed_will() {
    let mut life = live(Some(will(None)));
    let expected = vec![
        PublishWill(will(None)),
        SendDisconnect(TAKEN_OVER),
        CloseWriter,
        HandOverState,
        Linger,
    ];
    let takeover = Event::TakeOver { handover: true };
    run(&mut life, 60, vec![(takeover, false, false, expected)]);

    let mut life = live(Some(will(Some(5))));
    let expected = vec![
        SendDisconnect(TAKEN_OVER),
        CloseWriter,
        HandOverState,
        Linger,
    ];
    run(&mut life, 60, vec![(takeover, false, false, expected)]);
}

#[test]
fn takeover_of_an_offline_session_cancels_its_delayed_will() {
    let mut life = live(Some(will(Some(30))));
    life.close(Close::Lost, facts(60, false, false));
    life.writer_closed(facts(60, false, false));
    let takeover = Event::TakeOver { handover: true };
    let expected = vec![CancelWillTimer, HandOverState, Stop];
    run(
        &mut life,
        60,
        vec![
            (takeover, false, false, expected),
            (takeover, false, false, vec![AnswerEnded]),
        ],
    );
}

#[test]
fn takeover_by_a_clean_start_publishes_the_will_after_the_disconnect() {
    let mut life = live(Some(will(Some(30))));
    let expected = vec![
        SendDisconnect(TAKEN_OVER),
        CloseWriter,
        PublishWill(will(Some(30))),
        Linger,
    ];
    let takeover = Event::TakeOver { handover: false };
    run(&mut life, 60, vec![(takeover, false, false, expected)]);
}

#[test]
fn takeover_with_pending_acks_disconnects_once_they_are_sent() {
    let mut life = live(None);
    let takeover = Event::TakeOver { handover: true };
    run(
        &mut life,
        60,
        vec![
            (
                takeover,
                true,
                true,
                vec![StopReading, HandOverState, Linger],
            ),
            (
                Event::AcksSettled,
                false,
                false,
                vec![SendDisconnect(TAKEN_OVER), CloseWriter],
            ),
            (Event::WriterClosed, false, false, vec![DropLink, Stop]),
        ],
    );
}

#[test]
fn a_crash_ends_a_clean_session_and_keeps_a_persistent_one() {
    let crashed = ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR;
    let mut life = live(Some(will(Some(30))));
    let expected = vec![
        EndSession,
        Linger,
        SendDisconnect(crashed),
        CloseWriter,
        PublishWill(will(Some(30))),
        Linger,
    ];
    run(&mut life, 0, vec![(Event::Crash, false, false, expected)]);

    let mut life = live(None);
    let expected = vec![SendDisconnect(crashed), CloseWriter, Linger];
    run(&mut life, 60, vec![(Event::Crash, false, false, expected)]);
}

#[test]
fn shutdown_drops_the_will_and_keeps_a_persistent_session() {
    let mut life = live(Some(will(None)));
    let expected = vec![
        SendDisconnect(SHUTTING_DOWN),
        CloseWriter,
        GoneOffline,
        DropQueuedQos0,
    ];
    run(
        &mut life,
        NEVER_EXPIRES,
        vec![(Event::Shutdown, false, false, expected)],
    );
}

#[test]
fn a_3_1_1_client_gets_no_disconnect_packet() {
    let mut life = live(None);
    let mut f = facts(0, false, false);
    f.v5 = false;
    let got = life.close(Close::Server(SHUTTING_DOWN), f);
    assert_eq!(got, vec![CloseWriter, GoneOffline, EndSession, Linger]);
}

#[test]
fn a_restored_session_waits_out_what_is_left_of_its_delays() {
    let mut life = Lifecycle::offline();
    let got = life.restore(Some(will(Some(30))), 100, secs(40));
    assert_eq!(got, vec![DelayWill(secs(0)), ScheduleExpiry(secs(60))]);
    assert_eq!(life.phase(), Phase::Offline);
    assert!(!life.has_connection());

    let mut life = Lifecycle::offline();
    let got = life.restore(Some(will(Some(30))), NEVER_EXPIRES, secs(10));
    assert_eq!(got, vec![DelayWill(secs(20))]);
}

#[test]
fn nothing_is_closed_before_the_connection_is_open() {
    let mut life = Lifecycle::connecting(None);
    assert!(life.close(Close::Lost, facts(0, false, false)).is_empty());
    assert_eq!(life.phase(), Phase::Connecting);
}

#[test]
fn a_refused_resume_closes_without_will_record_or_end() {
    // The connection was opened, its CONNACK refused: the stored session stays as it is.
    let mut life = Lifecycle::connecting(Some(will(None)));
    life.opened();
    run(
        &mut life,
        300,
        vec![
            (Event::Refuse, false, false, vec![CloseWriter, Linger]),
            (Event::WriterClosed, false, false, vec![DropLink, Stop]),
        ],
    );
    assert_eq!(life.phase(), Phase::Gone);
}
