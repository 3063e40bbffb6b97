namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>
/// A cluster of silos for one test: its own cluster id (tests share the database), a secret, and silos that run in
/// this process or as separate processes. Waits are on explicit conditions, never fixed sleeps.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly List<SiloHandle> _silos = [];
    private readonly Dictionary<string, string> _settings;

    public TestCluster(string name, IReadOnlyDictionary<string, string>? settings = null)
    {
        ClusterId = $"{name}-{Guid.NewGuid():N}"[..Math.Min(63, name.Length + 13)];
        Secret = Convert.ToHexString(Guid.NewGuid().ToByteArray()) + Convert.ToHexString(Guid.NewGuid().ToByteArray());
        _settings = new Dictionary<string, string>(FastMembership)
        {
            ["ConnectionStrings:Postgres"] = TestPostgres.ConnectionString,
            ["Meta:ClusterId"] = ClusterId,
            ["Meta:Cluster:ClusterSecret"] = Secret,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            _settings[key] = value;
        }
    }

    /// <summary>Quicker failure detection than the defaults so that tests finish fast; the default-settings test
    /// passes an empty override list.</summary>
    public static IReadOnlyDictionary<string, string> FastMembership => OrleansMeta.TestGrains.FastClusterSettings.Membership;

    public string ClusterId { get; }

    public string Secret { get; }

    public IReadOnlyList<SiloHandle> Silos => _silos;

    public IEnumerable<SiloHandle> Running => _silos.Where(s => s.IsRunning);

    /// <summary>A client that may use any running silo.</summary>
    public OrleansMeta.Client.MetaClient CreateClient() => new(new OrleansMeta.Client.MetaClientOptions
    {
        BootstrapUrls = [.. Running.Select(s => s.Http.BaseAddress!)],
        RequestTimeout = TimeSpan.FromSeconds(20),
        MaxAttempts = 10,
    });

    private IEnumerable<string> Arguments => _settings.Select(kv => $"--{kv.Key}={kv.Value}");

    /// <summary>Settings to start with no fast-membership overrides (the product's defaults).</summary>
    public static IReadOnlyDictionary<string, string> Defaults { get; } = FastMembership.ToDictionary(kv => kv.Key, _ => "");

    /// <param name="siloPort">The port the silo advertises for its peers (default: a free one, on which it also listens).</param>
    public async Task<InProcessSilo> StartInProcessSiloAsync(
        IReadOnlyDictionary<string, string>? overrides = null, Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? configureServices = null,
        int? siloPort = null)
    {
        var settings = new Dictionary<string, string>(_settings);
        foreach (var (key, value) in overrides ?? new Dictionary<string, string>())
        {
            settings[key] = value;
        }

        var silo = await InProcessSilo.StartAsync(
            $"silo-{_silos.Count}", settings.Where(kv => kv.Value.Length > 0).Select(kv => $"--{kv.Key}={kv.Value}"), siloPortOrNull: siloPort, configureServices: configureServices);
        _silos.Add(silo);
        return silo;
    }

    /// <summary>Starts a silo again on the ports of <paramref name="previous"/> (which must be stopped or killed): a
    /// new incarnation with a higher generation.</summary>
    public async Task<InProcessSilo> RestartInProcessSiloAsync(InProcessSilo previous)
    {
        await previous.DisposeAsync();
        var silo = await InProcessSilo.StartAsync(previous.Name, Arguments.Where(a => !a.EndsWith('=')), previous.PublicPort, previous.SiloPort);
        _silos[_silos.IndexOf(previous)] = silo;
        return silo;
    }

    public async Task<ProcessSilo> StartProcessSiloAsync(int? publicPort = null, int? siloPort = null)
    {
        var silo = ProcessSilo.Start($"silo-{_silos.Count}", Arguments.Where(a => !a.EndsWith('=')), publicPort, siloPort);
        _silos.Add(silo);
        await Eventually.Until(async () =>
        {
            if (!silo.IsRunning)
            {
                throw new InvalidOperationException($"{silo} exited during start:\n{silo.Output}");
            }

            try
            {
                return (await silo.Http.GetAsync("/health/ready")).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, $"{silo} is ready", TimeSpan.FromSeconds(60));
        return silo;
    }

    /// <summary>Waits until every running silo holds the same view version with exactly the running silos active. The
    /// default limit is a minute: on a shared two-core machine, two test classes each starting three silos at once
    /// have taken more than 30 s to agree. A timeout says what each silo saw last.</summary>
    public async Task<long> WaitForAgreementAsync(TimeSpan? within = null)
    {
        long agreed = 0;
        var seen = "no view read yet";
        try
        {
            await Eventually.Until(async () =>
            {
                var running = Running.ToList();
                var expected = running.Select(s => s.SiloEndpoint).Order().ToArray();
                var views = await Task.WhenAll(running.Select(s => s.GetClusterAsync()));
                seen = string.Join("; ", running.Zip(views, (silo, view) =>
                    $"{silo.SiloEndpoint}: version {view.ViewVersion}, active [{string.Join(", ", view.Silos.Where(s => s.Status == "active").Select(s => s.Endpoint).Order())}]"));
                var versions = views.Select(v => v.ViewVersion).Distinct().ToArray();
                var sameActive = views.All(v => v.Silos.Where(s => s.Status == "active").Select(s => s.Endpoint).Order().SequenceEqual(expected));
                agreed = versions[0];
                return versions.Length == 1 && sameActive;
            }, "every running silo agrees on one view", within ?? TimeSpan.FromSeconds(60));
        }
        catch (Xunit.Sdk.FailException e)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message} What each silo saw last: {seen}.");
        }

        return agreed;
    }

    public async ValueTask DisposeAsync()
    {
        // Stop in parallel: each graceful stop only waits for itself.
        await Task.WhenAll(_silos.Select(async s => await s.DisposeAsync()));
    }
}
