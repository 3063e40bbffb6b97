using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace OrleansMeta.Silo.Tests;

/// <summary>A silo started with settings it cannot run with: the real binary, as operators start it.</summary>
public sealed class SiloSettingsProcessTests
{
    [Fact]
    public async Task Invalid_settings_stop_the_silo_with_every_problem_in_sentences_and_a_non_zero_exit_code()
    {
        var (exitCode, output) = await RunSiloAsync("--urls=ftp://nowhere", "--Meta:ClusterId=not valid!", "--Meta:Runtime:CallTimeout=-00:00:01");

        Assert.Equal(64, exitCode);
        Assert.Contains("3 settings need fixing", output, StringComparison.Ordinal);
        Assert.Contains("--urls value 'ftp://nowhere'", output, StringComparison.Ordinal);
        Assert.Contains("Meta:ClusterId 'not valid!'", output, StringComparison.Ordinal);
        Assert.Contains("Meta:Runtime:CallTimeout", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unusable_silo_listen_endpoint_or_outbound_address_is_refused_naming_the_setting()
    {
        var (exitCode, output) = await RunSiloAsync("--Meta:Cluster:SiloListenEndpoint=http://0.0.0.0/peers", "--Meta:Cluster:SiloOutboundAddress=0.0.0.0");

        Assert.Equal(64, exitCode);
        Assert.Contains("2 settings need fixing", output, StringComparison.Ordinal);
        Assert.Contains("Meta:Cluster:SiloListenEndpoint 'http://0.0.0.0/peers'", output, StringComparison.Ordinal);
        Assert.Contains("Meta:Cluster:SiloOutboundAddress '0.0.0.0'", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wildcard_public_url_without_an_advertised_url_is_refused_saying_what_to_set()
    {
        var (exitCode, output) = await RunSiloAsync("--urls=http://0.0.0.0:5080");

        Assert.Equal(64, exitCode);
        Assert.Contains("a setting needs fixing", output, StringComparison.Ordinal);
        Assert.Contains("The first --urls value 'http://0.0.0.0:5080' listens on every address", output, StringComparison.Ordinal);
        Assert.Contains("set Meta:AdvertisedUrl", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_in_use_stops_the_silo_saying_which_port_and_what_to_do()
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;

        var (exitCode, output) = await RunSiloAsync($"--urls=http://127.0.0.1:{port}");

        Assert.Equal(64, exitCode);
        Assert.Contains($"Port {port} (http://127.0.0.1:{port}) is already in use", output, StringComparison.Ordinal);
        Assert.Contains("--urls=", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output)> RunSiloAsync(params string[] args)
    {
        var siloDll = Path.Combine(AppContext.BaseDirectory, "OrleansMeta.Silo.dll");
        var start = new ProcessStartInfo("dotnet", [siloDll, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException("The silo did not exit within 60 s: " + await stdout + await stderr);
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
