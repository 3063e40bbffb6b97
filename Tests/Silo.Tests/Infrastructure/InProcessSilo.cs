using Microsoft.AspNetCore.Builder;
using OrleansMeta.Silo.Hosting;

namespace OrleansMeta.Silo.Tests.Infrastructure;

/// <summary>A silo in this process, with its own host and DI container, serving real HTTP on a loopback port.</summary>
public sealed class InProcessSilo : IAsyncDisposable
{
    private readonly WebApplication _app;

    private InProcessSilo(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
        Http = new HttpClient { BaseAddress = address };
    }

    public Uri Address { get; }

    public HttpClient Http { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<InProcessSilo> StartAsync(params string[] args)
    {
        var port = FreePort();
        var builder = WebApplication.CreateBuilder([.. args, $"--urls=http://127.0.0.1:{port}"]);
        builder.AddMetaSilo();
        var app = builder.Build();
        app.MapMetaSilo();
        await app.StartAsync();
        return new InProcessSilo(app, new Uri($"http://127.0.0.1:{port}"));
    }

    /// <summary>A free port in this project's range (<see cref="Ports"/>).</summary>
    public static int FreePort() => Ports.Free();

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
