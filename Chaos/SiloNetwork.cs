using System.Net;
using OrleansMeta.Tests.Shared;

namespace OrleansMeta.Chaos;

/// <summary>
/// One silo's links, each through a proxy the runner can cut or stall: to PostgreSQL, and with its peers. The silo
/// listens for peers on a private port and advertises its peer proxy's port, so every peer connection to it crosses
/// that proxy; its own connections to peers leave from a loopback address of its own (127.0.0.11, .12, ...), so that
/// the other silos' peer proxies can tell them apart and drop them. Both together make a symmetric partition.
/// </summary>
internal sealed class SiloNetwork : IAsyncDisposable
{
    private SiloNetwork(TcpProxy postgres, TcpProxy peers, IPAddress address, int listenPort)
    {
        Postgres = postgres;
        Peers = peers;
        Address = address;
        Settings = new Dictionary<string, string>
        {
            ["Meta:Cluster:SiloEndpoint"] = $"http://127.0.0.1:{peers.Port}",
            ["Meta:Cluster:SiloListenEndpoint"] = $"http://127.0.0.1:{listenPort}",
            ["Meta:Cluster:SiloOutboundAddress"] = address.ToString(),
        };
    }

    /// <summary>Between the silo and PostgreSQL.</summary>
    public TcpProxy Postgres { get; }

    /// <summary>In front of the silo's peer listener: the endpoint it advertises.</summary>
    public TcpProxy Peers { get; }

    /// <summary>The loopback address the silo's connections to its peers leave from.</summary>
    public IPAddress Address { get; }

    /// <summary>The silo's settings for its silo-to-silo endpoints.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; }

    public static SiloNetwork Create(int index, int postgresPort, int listenPort)
        => new(new TcpProxy("127.0.0.1", postgresPort), new TcpProxy("127.0.0.1", listenPort), IPAddress.Parse($"127.0.0.{11 + index}"), listenPort);

    public async ValueTask DisposeAsync()
    {
        await Postgres.DisposeAsync();
        await Peers.DisposeAsync();
    }
}
