namespace OrleansMeta.Client.Tests;

public sealed class OptionsTests
{
    [Fact]
    public void Invalid_options_are_rejected_with_every_problem_listed()
    {
        var options = new MetaClientOptions
        {
            BootstrapUrls = [new Uri("ftp://silo/"), new Uri("/relative", UriKind.Relative)],
            RequestTimeout = TimeSpan.Zero,
            MaxAttempts = 0,
            RetryBaseDelay = TimeSpan.FromSeconds(5),
            RetryMaxDelay = TimeSpan.FromSeconds(1),
            HttpMessageHandler = new SocketsHttpHandler(),
            HttpClient = new HttpClient(),
        };

        var error = Assert.Throws<ArgumentException>(() => new MetaClient(options));

        Assert.Equal("options", error.ParamName);
        Assert.Contains("BootstrapUrls[0]", error.Message, StringComparison.Ordinal);
        Assert.Contains("BootstrapUrls[1]", error.Message, StringComparison.Ordinal);
        Assert.Contains("RequestTimeout", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxAttempts", error.Message, StringComparison.Ordinal);
        Assert.Contains("RetryMaxDelay", error.Message, StringComparison.Ordinal);
        Assert.Contains("Both HttpMessageHandler and HttpClient", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_without_bootstrap_urls_are_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => new MetaClient(new MetaClientOptions()));

        Assert.Contains("BootstrapUrls is empty", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Defaults_are_the_documented_ones()
    {
        var options = new MetaClientOptions();

        Assert.Equal(TimeSpan.FromSeconds(30), options.RequestTimeout);
        Assert.Equal(5, options.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(100), options.RetryBaseDelay);
        Assert.Equal(TimeSpan.FromSeconds(2), options.RetryMaxDelay);
    }

    [Fact]
    public async Task An_injected_http_client_is_used_and_left_undisposed()
    {
        using var http = new HttpClient();
        var client = new MetaClient(new MetaClientOptions { BootstrapUrls = [FakeSilo.RefusingUrl()], HttpClient = http, MaxAttempts = 1 });

        await Assert.ThrowsAsync<MetaApiException>(() => client.GetClusterAsync());
        client.Dispose();

        // Still usable: the client did not dispose what it does not own.
        http.CancelPendingRequests();
        Assert.Equal(TimeSpan.FromSeconds(100), http.Timeout);
    }
}
