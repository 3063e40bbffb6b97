using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using OrleansMeta.Contracts;

namespace OrleansMeta.Client.Tests;

/// <summary>The broker session against a fake controller: registration, schedule, re-registration, errors, shutdown.</summary>
public sealed class BrokerSessionTests
{
    private static readonly BrokerListener[] Listeners = [new("PLAINTEXT", "broker-1", 9092)];
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(30);

    private static BrokerSessionOptions Fast(Action<BrokerSessionOptions>? configure = null)
    {
        var options = new BrokerSessionOptions
        {
            HeartbeatInterval = TimeSpan.FromMilliseconds(100),
            RetryBaseDelay = TimeSpan.FromMilliseconds(10),
            CallTimeout = TimeSpan.FromSeconds(10),
        };
        configure?.Invoke(options);
        return options;
    }

    [Fact]
    public async Task A_session_registers_a_new_incarnation_and_heartbeats_until_unfenced()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        var states = new ConcurrentQueue<BrokerSessionState>();
        await using var session = new BrokerSession(client, 1, Listeners, "rack-a", Fast());
        session.StateChanged += (_, e) => states.Enqueue(e.State);

        await session.StartAsync();
        await session.WaitUntilUnfencedAsync().WaitAsync(Within);

        var registration = Assert.Single(controller.Registrations);
        Assert.Equal(session.IncarnationId, registration.IncarnationId);
        Assert.NotEqual(Guid.Empty, registration.IncarnationId);
        Assert.Equal(("rack-a", "broker-1"), (registration.Rack, registration.Listeners[0].Host));
        Assert.Equal(10, session.BrokerEpoch);
        Assert.False(session.IsFenced);
        var first = controller.Heartbeats[0].Request;
        Assert.Equal(new BrokerHeartbeatRequest(10, 100, WantShutDown: false), first);
        Assert.Equal([BrokerSessionState.Registering, BrokerSessionState.Fenced, BrokerSessionState.Unfenced], states.Take(3));
    }

    [Fact]
    public async Task A_new_session_is_a_new_incarnation()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();

        await using var first = new BrokerSession(client, 1, Listeners);
        await using var second = new BrokerSession(client, 1, Listeners);

        Assert.NotEqual(first.IncarnationId, second.IncarnationId);
    }

    [Fact]
    public async Task Heartbeats_keep_the_interval_from_the_start_of_the_previous_one()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        var interval = TimeSpan.FromMilliseconds(150);
        await using var session = await client.StartBrokerSessionAsync(1, Listeners, null, Fast(o => o.HeartbeatInterval = interval));
        var watch = Stopwatch.StartNew();

        await Eventually.Until(() => controller.Heartbeats.Count >= 6, "six heartbeats", Within);
        var elapsed = watch.Elapsed;

        var heartbeats = controller.Heartbeats;
        var gaps = heartbeats.Zip(heartbeats.Skip(1), (a, b) => b.At - a.At).ToList();
        // Never faster than the interval (a little slack for one request overtaking the previous in transit)...
        Assert.All(gaps, gap => Assert.True(gap >= interval - TimeSpan.FromMilliseconds(40), $"a gap of {gap.TotalMilliseconds} ms"));
        // ...and no more heartbeats than the interval allows in the time waited.
        Assert.True(heartbeats.Count <= 2 + (elapsed / interval), $"{heartbeats.Count} heartbeats in {elapsed.TotalMilliseconds} ms");
    }

    [Fact]
    public async Task Every_heartbeat_reports_the_offset_the_broker_has_applied()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        long applied = 40;
        await using var session = await client.StartBrokerSessionAsync(1, Listeners, null,
            Fast(o => o.AppliedMetadataOffset = () => Interlocked.Read(ref applied)));

        await Eventually.Until(() => controller.Heartbeats.Count >= 2, "two heartbeats", Within);
        Assert.True(session.IsFenced); // 40 is below the registration's offset of 100.
        Assert.Equal(BrokerSessionState.Fenced, session.State);
        Interlocked.Exchange(ref applied, 100);
        await session.WaitUntilUnfencedAsync().WaitAsync(Within);

        Assert.Equal(40, controller.Heartbeats[0].Request.CurrentMetadataOffset);
        Assert.Equal(100, controller.Heartbeats[^1].Request.CurrentMetadataOffset);
    }

    [Theory]
    [InlineData(409, ErrorCodes.StaleBrokerEpoch)]
    [InlineData(404, ErrorCodes.BrokerIdNotRegistered)]
    public async Task A_session_the_service_no_longer_accepts_registers_again_with_its_incarnation_and_a_new_epoch(int status, string code)
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        var registered = new ConcurrentQueue<BrokerRegisteredEventArgs>();
        var errors = new ConcurrentQueue<BrokerSessionErrorEventArgs>();
        await using var session = new BrokerSession(client, 1, Listeners, null, Fast());
        session.Registered += (_, e) => registered.Enqueue(e);
        session.Error += (_, e) => errors.Enqueue(e);
        await session.StartAsync();
        await session.WaitUntilUnfencedAsync().WaitAsync(Within);

        // The service loses the registration (e.g. the broker was unregistered): refuse the epoch once.
        controller.Forget();
        var refused = 0;
        controller.Heartbeat = (_, request) => Interlocked.Exchange(ref refused, 1) == 0
            ? Task.FromResult(ErrorTests.Problem(status, code, false))
            : controller.DefaultHeartbeat(request);

        await Eventually.Until(() => registered.Count == 2 && session.State == BrokerSessionState.Unfenced, "registered again and unfenced", Within);

        var again = registered.Last();
        Assert.True(again.IsReRegistration);
        Assert.Equal(10, again.PreviousBrokerEpoch);
        Assert.Equal(20, again.BrokerEpoch);
        Assert.Equal(code, again.Reason?.Code);
        Assert.Equal(20, session.BrokerEpoch);
        Assert.All(controller.Registrations, r => Assert.Equal(session.IncarnationId, r.IncarnationId));
        Assert.Equal(20, controller.Heartbeats[^1].Request.BrokerEpoch);
        var error = Assert.Single(errors);
        Assert.True(error.WillRetry);
        Assert.False(session.Completion.IsCompleted);
    }

    [Fact]
    public async Task A_heartbeat_error_retrying_cannot_fix_faults_the_session_and_is_raised()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        controller.Heartbeat = (_, _) => Task.FromResult(ErrorTests.Problem(400, ErrorCodes.InvalidRequest, false, "currentMetadataOffset is beyond the log head"));
        var errors = new ConcurrentQueue<BrokerSessionErrorEventArgs>();
        await using var session = new BrokerSession(client, 1, Listeners, null, Fast());
        session.Error += (_, e) => errors.Enqueue(e);

        await session.StartAsync();

        var error = await Assert.ThrowsAsync<MetaApiException>(() => session.Completion.WaitAsync(Within));
        Assert.Equal(ErrorCodes.InvalidRequest, error.Code);
        Assert.Equal(BrokerSessionState.Faulted, session.State);
        Assert.True(session.IsFenced);
        var raised = Assert.Single(errors);
        Assert.False(raised.WillRetry);
        Assert.Same(error, raised.Exception);
        await Assert.ThrowsAsync<MetaApiException>(() => session.WaitUntilUnfencedAsync());
        await Assert.ThrowsAsync<MetaApiException>(() => session.ShutDownAsync());
        Assert.Single(controller.Heartbeats); // Not retried.
    }

    [Fact]
    public async Task A_registration_refused_while_another_process_holds_the_broker_fails_the_start()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        controller.Register = (_, _) => ErrorTests.Problem(409, ErrorCodes.DuplicateBrokerRegistration, false);
        var session = new BrokerSession(client, 1, Listeners, null, Fast());

        var error = await Assert.ThrowsAsync<MetaApiException>(() => session.StartAsync());

        Assert.Equal(ErrorCodes.DuplicateBrokerRegistration, error.Code);
        Assert.Equal(BrokerSessionState.Faulted, session.State);
        Assert.Same(error, (await Assert.ThrowsAsync<MetaApiException>(() => session.Completion)));
        Assert.Empty(controller.Heartbeats);
        await session.DisposeAsync(); // Does not throw for a faulted session.
    }

    [Fact]
    public async Task Retryable_failures_are_retried_with_backoff_well_before_the_next_heartbeat_is_due()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        var failures = 3;
        controller.Heartbeat = (number, request) => number <= failures
            ? Task.FromResult(ErrorTests.Problem(503, ErrorCodes.Unavailable, true))
            : controller.DefaultHeartbeat(request);
        var errors = new ConcurrentQueue<BrokerSessionErrorEventArgs>();
        var interval = TimeSpan.FromSeconds(20);
        await using var session = new BrokerSession(client, 1, Listeners, null,
            Fast(o => (o.HeartbeatInterval, o.RetryBaseDelay) = (interval, TimeSpan.FromMilliseconds(100))));
        session.Error += (_, e) => errors.Enqueue(e);
        var watch = Stopwatch.StartNew();

        await session.StartAsync();
        await session.WaitUntilUnfencedAsync().WaitAsync(Within);

        Assert.True(watch.Elapsed < interval, "the retries waited for the heartbeat interval");
        Assert.Equal(failures, errors.Count);
        Assert.All(errors, e => Assert.True(e.WillRetry));
        Assert.All(errors, e => Assert.Equal(ErrorCodes.Unavailable, ((MetaApiException)e.Exception).Code));
        // Backoff, not a tight loop: at least half of 100, 200 and 400 ms (the jitter's floor) between the attempts.
        var at = controller.Heartbeats.Select(h => h.At).ToList();
        Assert.True(at[failures] - at[0] >= TimeSpan.FromMilliseconds(350 - 30), $"retries after {(at[failures] - at[0]).TotalMilliseconds} ms");
    }

    [Fact]
    public async Task A_heartbeat_without_an_answer_within_the_call_timeout_is_given_up_and_sent_again()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = Samples.Client(o => (o.MaxAttempts, o.RequestTimeout) = (1, TimeSpan.FromMinutes(5)), controller.Silo.Url);
        var never = new TaskCompletionSource<IResult>();
        controller.Heartbeat = (number, request) => number == 1 ? never.Task : controller.DefaultHeartbeat(request);
        var errors = new ConcurrentQueue<BrokerSessionErrorEventArgs>();
        await using var session = new BrokerSession(client, 1, Listeners, null, Fast(o => o.CallTimeout = TimeSpan.FromMilliseconds(300)));
        session.Error += (_, e) => errors.Enqueue(e);

        await session.StartAsync();
        await session.WaitUntilUnfencedAsync().WaitAsync(Within);

        // The hung heartbeat was given up after the call timeout, not the client's five minutes, and sent again. On a
        // loaded machine a later one can miss the 300 ms too (it opens a new connection); each such error is the same
        // retryable timeout.
        Assert.NotEmpty(errors);
        Assert.All(errors, e =>
        {
            var error = Assert.IsType<MetaApiException>(e.Exception);
            Assert.Equal(ErrorCodes.Timeout, error.Code);
            Assert.True(error.IsRetryable);
        });
        Assert.True(controller.Heartbeats.Count >= 2);
        Assert.Single(controller.Registrations); // A lost heartbeat is only a retry, not a reason to register again.
    }

    [Fact]
    public async Task A_controlled_shutdown_asks_at_once_without_waiting_for_the_next_heartbeat()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        var interval = TimeSpan.FromMinutes(5);
        await using var session = await client.StartBrokerSessionAsync(1, Listeners, null, Fast(o => o.HeartbeatInterval = interval));
        await session.WaitUntilUnfencedAsync().WaitAsync(Within);
        var watch = Stopwatch.StartNew();

        Assert.True(await session.ShutDownAsync().WaitAsync(interval / 2));

        Assert.True(watch.Elapsed < interval / 2);
        Assert.True(controller.Heartbeats[^1].Request.WantShutDown);
    }

    [Fact]
    public async Task A_controlled_shutdown_asks_until_the_service_agrees_then_stops()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        var asked = 0;
        controller.Heartbeat = (_, request) => request.WantShutDown && Interlocked.Increment(ref asked) < 3
            ? Task.FromResult<IResult>(Results.Ok(new BrokerHeartbeatResponse(false, true, ShouldShutDown: false, 100)))
            : controller.DefaultHeartbeat(request);
        var states = new ConcurrentQueue<BrokerSessionState>();
        await using var session = await client.StartBrokerSessionAsync(1, Listeners, null, Fast());
        await session.WaitUntilUnfencedAsync().WaitAsync(Within);
        session.StateChanged += (_, e) => states.Enqueue(e.State);

        var granted = await session.ShutDownAsync().WaitAsync(Within);

        Assert.True(granted);
        Assert.Equal(BrokerSessionState.Stopped, session.State);
        Assert.True(session.Completion.IsCompletedSuccessfully);
        Assert.Equal(3, Volatile.Read(ref asked));
        Assert.True(controller.Heartbeats[^1].Request.WantShutDown);
        Assert.Equal([BrokerSessionState.ShuttingDown, BrokerSessionState.Stopped], states);
    }

    [Fact]
    public async Task A_controlled_shutdown_the_service_never_grants_gives_up_after_its_timeout()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        controller.Heartbeat = (_, request) =>
            Task.FromResult<IResult>(Results.Ok(new BrokerHeartbeatResponse(false, true, ShouldShutDown: false, 100)));
        await using var session = await client.StartBrokerSessionAsync(1, Listeners, null,
            Fast(o => o.ControlledShutdownTimeout = TimeSpan.FromMilliseconds(500)));
        var watch = Stopwatch.StartNew();

        var granted = await session.ShutDownAsync().WaitAsync(Within);

        Assert.False(granted);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(450), $"gave up after {watch.Elapsed.TotalMilliseconds} ms");
        Assert.Equal(BrokerSessionState.Stopped, session.State);
        Assert.Contains(controller.Heartbeats, h => h.Request.WantShutDown);
    }

    [Fact]
    public async Task Stopping_a_session_ends_its_heartbeats_and_completes_it()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        var session = await client.StartBrokerSessionAsync(1, Listeners, null, Fast());
        await Eventually.Until(() => controller.Heartbeats.Count >= 2, "two heartbeats", Within);

        await session.StopAsync();
        var sent = controller.Heartbeats.Count;

        Assert.True(session.Completion.IsCompletedSuccessfully);
        Assert.Equal(BrokerSessionState.Stopped, session.State);
        await Assert.ThrowsAsync<InvalidOperationException>(() => session.StartAsync());
        Assert.False(await session.ShutDownAsync());
        await session.DisposeAsync();
        // Absence can only be watched for a while: five intervals without a heartbeat.
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.Equal(sent, controller.Heartbeats.Count);
    }

    [Fact]
    public async Task An_event_handler_that_throws_faults_the_session_instead_of_being_lost()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        await using var session = new BrokerSession(client, 1, Listeners, null, Fast());
        session.StateChanged += (_, e) =>
        {
            if (e.State == BrokerSessionState.Unfenced)
            {
                throw new InvalidOperationException("handler bug");
            }
        };

        await session.StartAsync();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => session.Completion.WaitAsync(Within));
        Assert.Equal("handler bug", error.Message);
        Assert.Equal(BrokerSessionState.Faulted, session.State);
    }

    [Fact]
    public async Task Invalid_session_arguments_are_rejected_with_every_problem_listed()
    {
        await using var controller = await FakeController.StartAsync();
        using var client = controller.Client();
        var options = new BrokerSessionOptions
        {
            HeartbeatInterval = TimeSpan.Zero,
            CallTimeout = TimeSpan.FromSeconds(-1),
            ControlledShutdownTimeout = TimeSpan.Zero,
            RetryBaseDelay = TimeSpan.FromSeconds(-1),
        };

        var error = Assert.Throws<ArgumentException>(() => new BrokerSession(client, 1, Listeners, null, options));

        Assert.Equal("options", error.ParamName);
        foreach (var name in new[] { "HeartbeatInterval", "CallTimeout", "ControlledShutdownTimeout", "RetryBaseDelay" })
        {
            Assert.Contains(name, error.Message, StringComparison.Ordinal);
        }

        Assert.Throws<ArgumentException>(() => new BrokerSession(client, 1, [], null));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BrokerSession(client, -1, Listeners, null));
    }

    [Fact]
    public void Session_defaults_are_the_documented_ones()
    {
        var options = new BrokerSessionOptions();

        Assert.Equal(TimeSpan.FromSeconds(2), options.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(4), options.CallTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(100), options.RetryBaseDelay);
        Assert.Equal(TimeSpan.FromSeconds(30), options.ControlledShutdownTimeout);
        Assert.Null(options.AppliedMetadataOffset);
    }
}
