using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Persistence;
using OrleansMeta.Silo.Hosting;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>
/// An in-process silo of a <see cref="TestCluster"/> whose metadata log reader and grain storage are wrapped for fault
/// injection: <see cref="Log"/> can hold this silo's image back (a slow tailer), <see cref="Storage"/> can fail writes.
/// It is not in the cluster's silo list, so tests that use it wait on their own conditions and build their own clients.
/// </summary>
public sealed class HookedSilo : SiloHandle
{
    private readonly WebApplication _app;
    private bool _running = true;

    private HookedSilo(string name, int publicPort, int siloPort, WebApplication app, LaggingMetadataLog log, FaultyGrainStorage storage)
        : base(name, publicPort, siloPort)
    {
        _app = app;
        Log = log;
        Storage = storage;
    }

    public LaggingMetadataLog Log { get; }

    public FaultyGrainStorage Storage { get; }

    public IServiceProvider Services => _app.Services;

    public IGrainFactory Grains => _app.Services.GetRequiredService<IGrainFactory>();

    public override bool IsRunning => _running;

    public static async Task<HookedSilo> StartAsync(TestCluster cluster, string name, IReadOnlyDictionary<string, string>? settings = null)
    {
        var publicPort = Ports.Free();
        var siloPort = Ports.Free();
        var values = new Dictionary<string, string>(TestCluster.FastMembership)
        {
            ["ConnectionStrings:Postgres"] = TestPostgres.ConnectionString,
            ["Meta:ClusterId"] = cluster.ClusterId,
            ["Meta:Cluster:ClusterSecret"] = cluster.Secret,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            values[key] = value;
        }

        var builder = WebApplication.CreateBuilder([
            .. values.Select(kv => $"--{kv.Key}={kv.Value}"),
            $"--urls=http://127.0.0.1:{publicPort}",
            $"--Meta:Cluster:SiloEndpoint=http://127.0.0.1:{siloPort}",
            $"--Meta:Cluster:SiloName={name}",
        ]);
        builder.AddMetaSilo();
        // Wrap whatever the silo registered (decorators included), not a particular implementation.
        var log = Resolver<IMetadataLog>(builder.Services);
        var storage = Resolver<IGrainStorage>(builder.Services);
        builder.Services.AddSingleton(sp => new LaggingMetadataLog(log(sp)));
        builder.Services.Replace(ServiceDescriptor.Singleton<IMetadataLog>(sp => sp.GetRequiredService<LaggingMetadataLog>()));
        builder.Services.AddSingleton(sp => new FaultyGrainStorage(storage(sp)));
        builder.Services.Replace(ServiceDescriptor.Singleton<IGrainStorage>(sp => sp.GetRequiredService<FaultyGrainStorage>()));
        var app = builder.Build();
        app.MapMetaSilo();
        await app.StartAsync();
        return new HookedSilo(name, publicPort, siloPort, app, app.Services.GetRequiredService<LaggingMetadataLog>(),
            app.Services.GetRequiredService<FaultyGrainStorage>());
    }

    private static Func<IServiceProvider, T> Resolver<T>(IServiceCollection services) where T : class
    {
        var descriptor = services.Last(d => d.ServiceType == typeof(T) && !d.IsKeyedService);
        return descriptor switch
        {
            { ImplementationInstance: T instance } => _ => instance,
            { ImplementationFactory: { } factory } => sp => (T)factory(sp),
            { ImplementationType: { } type } => sp => (T)ActivatorUtilities.CreateInstance(sp, type),
            _ => throw new InvalidOperationException($"Cannot wrap the registration of {typeof(T).Name}."),
        };
    }

    public override async Task StopAsync()
    {
        if (_running)
        {
            _running = false;
            Log.Release();
            await _app.StopAsync();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>
/// A metadata log reader that can stop handing records to this silo's image (a tailer that lags), at an offset or just
/// after the first record that matches a condition. The head it reports is always the true one.
/// </summary>
public sealed class LaggingMetadataLog(IMetadataLog inner) : IMetadataLog
{
    private readonly Lock _lock = new();
    private long _cap = long.MaxValue;
    private Func<LoggedRecord, bool>? _holdAfter;
    private TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The offset this reader holds at, or null while it passes everything.</summary>
    public long? HeldAt
    {
        get
        {
            lock (_lock)
            {
                return _cap == long.MaxValue ? null : _cap;
            }
        }
    }

    /// <summary>Hands out nothing after <paramref name="offset"/>.</summary>
    public void HoldAt(long offset)
    {
        lock (_lock)
        {
            _cap = offset;
        }
    }

    /// <summary>Hands out records up to and including the first one (read from now on) that matches, then nothing more.</summary>
    public void HoldAfter(Func<LoggedRecord, bool> condition)
    {
        lock (_lock)
        {
            _holdAfter = condition;
        }
    }

    public void Release()
    {
        lock (_lock)
        {
            _cap = long.MaxValue;
            _holdAfter = null;
            _released.TrySetResult();
            _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public async Task<IReadOnlyList<LoggedRecord>> ReadAsync(long afterOffset, int maxCount, CancellationToken cancellationToken)
    {
        var records = await inner.ReadAsync(afterOffset, maxCount, cancellationToken);
        lock (_lock)
        {
            var passed = new List<LoggedRecord>();
            foreach (var record in records)
            {
                if (record.Offset > _cap)
                {
                    break;
                }

                passed.Add(record);
                if (_holdAfter is { } condition && condition(record))
                {
                    _cap = record.Offset;
                    _holdAfter = null;
                    break;
                }
            }

            return passed;
        }
    }

    private int _failingHeadReads;

    /// <summary>The next <paramref name="count"/> reads of the log head fail as a lost database connection does.</summary>
    public void FailNextHeadReads(int count = 1)
    {
        lock (_lock)
        {
            _failingHeadReads = count;
        }
    }

    public Task<long> GetHeadAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_failingHeadReads > 0)
            {
                _failingHeadReads--;
                throw new Npgsql.NpgsqlException("Injected failure: Exception while reading from stream");
            }
        }

        return inner.GetHeadAsync(cancellationToken);
    }

    public async Task WaitForAppendAsync(long afterOffset, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        Task released;
        lock (_lock)
        {
            released = _released.Task;
            if (afterOffset < _cap)
            {
                released = Task.CompletedTask;
            }
        }

        if (!released.IsCompleted)
        {
            // Held: new records would not be handed out anyway; wake when released or after the usual wait.
            await Task.WhenAny(released, Task.Delay(maxWait, cancellationToken));
            return;
        }

        await inner.WaitForAppendAsync(afterOffset, maxWait, cancellationToken);
    }
}

/// <summary>Grain storage that fails chosen writes, either before they reach the database or after they committed.</summary>
public sealed class FaultyGrainStorage(IGrainStorage inner) : IGrainStorage
{
    private readonly Lock _lock = new();
    private Func<GrainId, string, bool>? _which;
    private int _remaining;
    private bool _afterCommit;

    /// <summary>
    /// The next <paramref name="count"/> writes that match fail: without reaching the database (a clean failure), or,
    /// with <paramref name="afterCommit"/>, after they committed (an unknown outcome: the answer was lost).
    /// </summary>
    public void FailNextWrites(Func<GrainId, string, bool> which, int count = 1, bool afterCommit = false)
    {
        lock (_lock)
        {
            (_which, _remaining, _afterCommit) = (which, count, afterCommit);
        }
    }

    /// <summary>How many of the failures asked for are still to come.</summary>
    public int PendingFailures
    {
        get
        {
            lock (_lock)
            {
                return _remaining;
            }
        }
    }

    public Task<StoredGrainState?> ReadAsync(GrainId grainId, string stateName, CancellationToken cancellationToken)
        => inner.ReadAsync(grainId, stateName, cancellationToken);

    public async Task<WriteResult> WriteAsync(GrainId grainId, string stateName, StateWrite write, CancellationToken cancellationToken)
    {
        bool fail, afterCommit;
        lock (_lock)
        {
            fail = _remaining > 0 && _which!(grainId, stateName);
            afterCommit = _afterCommit;
            if (fail)
            {
                _remaining--;
            }
        }

        if (fail && !afterCommit)
        {
            throw new TimeoutException($"Injected failure writing {grainId}/{stateName} (nothing was committed).");
        }

        var result = await inner.WriteAsync(grainId, stateName, write, cancellationToken);
        return fail ? throw new TimeoutException($"Injected failure after writing {grainId}/{stateName} (it committed; the answer was lost).") : result;
    }
}
