using System.Net.Http.Json;
using OrleansMeta.Contracts;

namespace OrleansMeta.Cluster.Tests.Infrastructure;

/// <summary>A silo of a test cluster, in this process or in its own.</summary>
public abstract class SiloHandle : IAsyncDisposable
{
    protected SiloHandle(string name, int publicPort, int siloPort)
    {
        Name = name;
        PublicPort = publicPort;
        SiloPort = siloPort;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{publicPort}"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public string Name { get; }

    public int PublicPort { get; }

    public int SiloPort { get; }

    public string SiloEndpoint => $"http://127.0.0.1:{SiloPort}";

    /// <summary>A client for the silo's public API.</summary>
    public HttpClient Http { get; }

    public abstract bool IsRunning { get; }

    public async Task<ClusterInfo> GetClusterAsync(CancellationToken cancellationToken = default)
        => (await Http.GetFromJsonAsync<ClusterInfo>("/v1/cluster", cancellationToken))!;

    /// <summary>Stops gracefully: the silo leaves the cluster and hands its grains over.</summary>
    public abstract Task StopAsync();

    public virtual ValueTask DisposeAsync()
    {
        Http.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    public override string ToString() => $"{Name} (public {PublicPort}, silo {SiloPort})";
}
